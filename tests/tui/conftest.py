"""Helpers for the TUI tests: apps on a temporary home, waiting for live updates."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date
from pathlib import Path
from typing import Any

import pytest_asyncio

from tenchat.client.settings import Settings
from tenchat.client.tui.app import TenchatApp, create_app
from tests.conftest import PASSPHRASE, Cli
from tests.support.relay import RelayProcess
from tests.tui.seed import build, seed_social

SIZE = (120, 36)
FIXED_TODAY = date(2026, 11, 26)


@pytest_asyncio.fixture
async def seed_home(tmp_path: Path) -> Path:
    """A home built directly by tests/tui/seed.py: fixed identity, contacts and messages."""
    await build(tmp_path)
    return tmp_path


@pytest_asyncio.fixture
async def seed_group_home(tmp_path: Path) -> Path:
    """:func:`seed_home` with the group Team and its messages (the group opens first)."""
    await build(tmp_path, group=True)
    return tmp_path


@pytest_asyncio.fixture
async def social_seed(cli: Cli, relay: RelayProcess, tmp_path: Path) -> Cli:
    """The test's relay seeded by :func:`tests.tui.seed.seed_social` (alice, bob, carol,
    dave: profiles, follows, posts, in the CLI's homes); the CLI on it."""
    await seed_social(cli, relay, tmp_path)
    return cli


def tui(home: Path, relay_url: str | None, **options: Any) -> TenchatApp:
    """An app on ``home`` that unlocks with the test passphrase; no notify-send."""
    options.setdefault("passphrase", PASSPHRASE)
    options.setdefault("notify_send", None)
    options.setdefault("settings", Settings())
    options.setdefault("save", False)
    options.setdefault("tz", UTC)
    return create_app(home, relay_url, **options)


async def until(pilot: Any, check: Callable[[], Any], timeout: float = 10.0,
                what: str = "") -> Any:
    """Let the app run until ``check()`` is truthy (no keypress involved)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await pilot.pause(0.05)


async def eventually(check: Any, what: str, timeout: float = 10.0) -> Any:
    """Poll an async ``check`` (another client's cache) until it is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def in_thread(cli: Cli, *args: Any, **kwargs: Any) -> Any:
    """Run a CLI process without blocking the app's loop."""
    return await asyncio.to_thread(cli, *args, **kwargs)


def pair(cli: Cli) -> None:
    """alice and bob exist on the relay; alice has a conversation with bob."""
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    cli("bob", "send", "alice", "hello alice")


def screen_text(app: Any) -> str:
    """What the terminal shows, as plain text (for asserting on and for debugging)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)
