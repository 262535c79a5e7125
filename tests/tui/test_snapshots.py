"""Snapshots of the main screens at 80×24 and 120×40, on a home built directly:
fixed identities, fixed clock (UTC, "today" = 2026-11-26), no relay, no cursor blink."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, TextArea

from tests.tui.conftest import FIXED_TODAY, tui
from tests.tui.seed import DEAD_RELAY

SIZES = [(80, 24), (120, 40)]


def app_for(home: Path, **options: Any) -> Any:
    return tui(home, DEAD_RELAY, run_client=False, today=lambda: FIXED_TODAY, **options)


async def still(pilot: Any) -> None:
    for widget in pilot.app.screen.query(TextArea):
        widget.cursor_blink = False
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause(0.3)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_chat(snap_compare: Any, seed_home: Path, size: tuple[int, int]) -> None:
    assert snap_compare(app_for(seed_home), terminal_size=size, run_before=still)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Any, seed_home: Path, size: tuple[int, int]) -> None:
    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("f1")
        await still(pilot)

    assert snap_compare(app_for(seed_home), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_search(snap_compare: Any, seed_home: Path, size: tuple[int, int]) -> None:
    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("ctrl+f", *"the")
        await still(pilot)

    assert snap_compare(app_for(seed_home), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_verify(snap_compare: Any, seed_home: Path, size: tuple[int, int]) -> None:
    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("alt+v")
        await still(pilot)

    assert snap_compare(app_for(seed_home), terminal_size=size, run_before=before)


def test_contacts(snap_compare: Any, seed_home: Path) -> None:
    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("ctrl+o")
        await still(pilot)

    assert snap_compare(app_for(seed_home), terminal_size=(120, 40),
                        run_before=before)


def test_first_run(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(app_for(tmp_path / "empty", passphrase=None), terminal_size=(80, 24),
                        run_before=still)


def test_unlock(snap_compare: Any, seed_home: Path) -> None:
    assert snap_compare(app_for(seed_home, passphrase=None),
                        terminal_size=(80, 24), run_before=still)


@pytest.mark.parametrize("size", SIZES)
def test_group_chat(snap_compare: Any, seed_group_home: Path, size: tuple[int, int]) -> None:
    """The group Team: authors, a reply, reactions, edited, deleted, pinned, seen by."""
    assert snap_compare(app_for(seed_group_home), terminal_size=size,
                        run_before=still)


@pytest.mark.parametrize("size", SIZES)
def test_group_members(snap_compare: Any, seed_group_home: Path, size: tuple[int, int]) -> None:
    """The member panel (F6) next to the group, its second member highlighted."""
    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("f6", "down")
        await still(pilot)

    assert snap_compare(app_for(seed_group_home), terminal_size=size,
                        run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_selecting(snap_compare: Any, seed_home: Path, size: tuple[int, int]) -> None:
    """Selecting messages is a mode: the marker on the message, SELECT and its keys below."""
    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("up", "up")
        await still(pilot)

    assert snap_compare(app_for(seed_home), terminal_size=size, run_before=before)
