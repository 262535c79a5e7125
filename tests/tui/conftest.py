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
from tenchat.client.tui.screens.chat import ChatScreen
from tenchat.client.tui.widgets.message_log import MessageLog
from tests.conftest import PASSPHRASE, Cli
from tests.support.clients import People
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


def chat_composed(app: Any) -> Any:
    """The chat screen once its message log is mounted, else None (for :func:`until`): a
    screen is current before its widgets are, and a query then finds nothing."""
    screen = app.screen
    return screen if isinstance(screen, ChatScreen) and screen.query(MessageLog) else None


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


@pytest_asyncio.fixture
async def paired(cli: Cli, relay: RelayProcess) -> None:
    """alice and bob exist on the relay, in the CLI's homes; alice has a conversation with
    bob ("hello alice"). Made in this process, by the client core `tenchat init` and
    `tenchat send` call: three CLI processes were much of a short test's set-up."""
    people = People(cli.home("alice").parent, relay.url)
    try:
        _, bob = await people("alice", "bob")
        await bob.send_text("alice", "hello alice")
    finally:
        await people.close()


def screen_text(app: Any) -> str:
    """What the terminal shows, as plain text (for asserting on and for debugging)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)
