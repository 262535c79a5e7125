"""Snapshots of the feed and a profile at 80×24, read from a real relay seeded with fixed
posts (fixed times, signed by the CLI users' own keys) and profiles; fixed clock."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Cli
from tests.support.relay import RelayProcess
from tests.tui.conftest import FIXED_TODAY, tui
from tests.tui.test_snapshots import still

pytestmark = pytest.mark.slow

def app_for(cli: Cli, relay: RelayProcess) -> Any:
    return tui(cli.home("alice"), relay.url, run_client=False, today=lambda: FIXED_TODAY,
               graphics="halfblocks")


async def settle(pilot: Any, text: str) -> None:
    for _ in range(100):
        await still(pilot)
        if text in "\n".join("".join(seg.text for seg in strip)
                             for strip in pilot.app.screen._compositor.render_strips()):
            return
    raise AssertionError(f"{text!r} never showed")


def test_feed(snap_compare: Any, social_seed: Cli, relay: RelayProcess) -> None:
    cli = social_seed

    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("f2")
        await settle(pilot, "Release notes")

    assert snap_compare(app_for(cli, relay), terminal_size=(80, 24), run_before=before)


def test_profile(snap_compare: Any, social_seed: Cli, relay: RelayProcess) -> None:
    cli = social_seed

    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("f3")
        await settle(pilot, "@dave asks to follow you")
        await settle(pilot, "▀")

    assert snap_compare(app_for(cli, relay), terminal_size=(80, 24), run_before=before)
