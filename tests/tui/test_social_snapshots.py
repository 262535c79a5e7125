"""Snapshots of the feed and a profile at 80×24, read from a real relay seeded with fixed
posts (fixed times, signed by the CLI users' own keys) and profiles; fixed clock."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tenchat.client.service import Client
from tenchat.common import frames as f
from tenchat.common import social as s
from tests.conftest import PASSPHRASE, Cli
from tests.support.relay import RelayProcess
from tests.tui.conftest import FIXED_TODAY, tui
from tests.tui.seed import ms
from tests.tui.test_snapshots import still

pytestmark = pytest.mark.slow

POSTS = [  # (author, text, time)
    ("carol", "Release notes for 0.4 are out: stories, polls and a feed.", "2026-11-25 18:00"),
    ("bob", "Finished the garden shed today. Photos tomorrow, the light was gone.",
     "2026-11-26 08:15"),
    ("bob", "Coffee at the usual place at 10?", "2026-11-26 09:40"),
]


def post_id(n: int) -> bytes:
    return hashlib.blake2b(f"post{n}".encode(), digest_size=16).digest()


async def put_posts(cli: Cli, relay: RelayProcess) -> None:
    for n, (author, text, when) in enumerate(POSTS):
        client = await Client.unlock(cli.home(author), relay.url, PASSPHRASE)
        try:
            post = s.Post(author=client.user, id=post_id(n), created_at=ms(when), text=text)
            conn = await client.connection()
            await conn.request(f.PostPut, record=s.sign_post(post, client.identity.sign))
        finally:
            await client.close()


def seed(cli: Cli, relay: RelayProcess, tmp_path: Path) -> None:
    for name in ("alice", "bob", "carol", "dave"):
        cli(name, "init", "--handle", name)
    cli("bob", "profile", "set", "--name", "Bob Builder")
    cli("carol", "profile", "set", "--name", "Carol Chen")
    avatar = tmp_path / "avatar.png"
    im = Image.new("RGB", (32, 32))
    im.putdata([(x * 8, 80, 255 - y * 8) for y in range(32) for x in range(32)])
    im.save(avatar)
    cli("alice", "profile", "set", "--name", "Alice Liddell", "--bio",
        "Curiouser and curiouser. Writes about tea parties.", "--avatar", str(avatar))
    for name in ("bob", "carol"):
        cli("alice", "follow", name)
        cli(name, "follow", "alice")
    cli("alice", "profile", "set", "--private")  # later followers ask first
    cli("dave", "follow", "alice")
    asyncio.run(put_posts(cli, relay))
    cli("carol", "follow", "bob")
    latest = post_id(2).hex()
    cli("carol", "react-post", latest, "👍")
    cli("alice", "react-post", latest, "👍")
    cli("carol", "react-post", latest, "☕")
    cli("carol", "comment", latest, "yes, see you there")


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


def test_feed(snap_compare: Any, cli: Cli, relay: RelayProcess, tmp_path: Path) -> None:
    seed(cli, relay, tmp_path)

    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("f2")
        await settle(pilot, "Release notes")

    assert snap_compare(app_for(cli, relay), terminal_size=(80, 24), run_before=before)


def test_profile(snap_compare: Any, cli: Cli, relay: RelayProcess, tmp_path: Path) -> None:
    seed(cli, relay, tmp_path)

    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("f3")
        await settle(pilot, "@dave asks to follow you")
        await settle(pilot, "▀")

    assert snap_compare(app_for(cli, relay), terminal_size=(80, 24), run_before=before)
