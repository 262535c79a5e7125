"""Snapshots at 80×24 and 200×60 of the chat (an attachment with a caption and its
thumbnail, a file without one, a verified peer), the wallet, the story composer and the
story viewer, the poll composer — on a home built directly, fixed clock, no relay — and
of the feed at 200×60 from a real relay (the 80×24 one is in test_social_snapshots)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from PIL import Image

from tenchat.client.cache import DELIVERED, Cache, MessageRow
from tenchat.client.keystore import Keystore
from tenchat.client.stories import StoryView
from tenchat.client.tui.screens.chat import ChatScreen
from tenchat.client.tui.screens.chat_media import thumbnail_cells
from tenchat.client.tui.screens.stories import StoryScreen
from tenchat.client.wallet.store import BalanceRow, WalletStore
from tenchat.common.crypto.media import MediaRef
from tests.conftest import PASSPHRASE, Cli
from tests.support.relay import RelayProcess
from tests.tui import test_social_snapshots as social
from tests.tui.seed import build, mid, ms, user
from tests.tui.test_snapshots import app_for, still

SIZES = [(80, 24), (200, 60)]

WALLET = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
WALLET_KEY = bytes(range(1, 33))


def picture() -> bytes:
    im = Image.new("RGB", (64, 32))
    im.putdata([(250 - x * 3, 120 + y * 3, 40) for y in range(32) for x in range(64)])
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


PICTURE_REF = MediaRef(hash=bytes(32), key=bytes(32), size=48_213, mime="image/png",
                       name="sunny.png", width=64, height=32)
PDF_REF = MediaRef(hash=bytes([1]) * 32, key=bytes(32), size=1_234_567,
                   mime="application/pdf", name="agenda.pdf")


async def _open(home: Path) -> Cache:
    secrets = Keystore.in_home(home).load(PASSPHRASE)
    return await Cache.open(home, secrets.storage_key)


async def build_features(home: Path) -> Path:
    """The seed home plus two attachments from bob, bob verified, a wallet with balances
    and two gifts."""
    await build(home)
    cache = await _open(home)
    try:
        async with cache.transaction():
            bob = user("bob")
            for n, (ref, caption, when) in enumerate([
                    (PICTURE_REF, "a sunny picture", "2026-11-26 09:10"),
                    (PDF_REF, "", "2026-11-26 09:12")]):
                msg_id = mid(100 + n, "bob")
                text = caption or f"[{ref.name}]"
                await cache.messages.add(MessageRow(msg_id, bob, False, text, ms(when), ms(when),
                                                   DELIVERED), shown=True)
                await cache.attachments.put(bob, msg_id, msgspec.msgpack.encode(ref))
            await cache.contacts.set_flag(bob, "verified", True)
            store = WalletStore(cache)
            await store.put_key(WALLET, WALLET_KEY, ms("2026-11-20 10:00"))
            for chain_id, symbol, amount in ((1, "ETH", 1_250_000_000_000_000_000),
                                             (137, "POL", 42 * 10**18)):
                await store.put_balance(BalanceRow(chain_id, WALLET, "", symbol, 18, amount,
                                                   ms("2026-11-26 08:00")))
            for n, (status, amount) in enumerate((("confirmed", 5 * 10**17), ("pending", None))):
                tx = bytes([n + 7]) * 32
                await store.add_gift(1, tx, bob, True, mid(200 + n, "gift"),
                                     ms(f"2026-11-2{5 + n} 1{n}:30"))
                if status == "confirmed":
                    await store.settle_gift(1, tx, status=status, token="", symbol="ETH",
                                            decimals=18, amount=amount, sender=WALLET,
                                            recipient="0x" + "ab" * 20, block=100, reason="",
                                            now=ms("2026-11-25 10:31"))
    finally:
        await cache.close()
    return home


@pytest_asyncio.fixture
async def features_app(tmp_path: Path) -> Any:
    """The app on :func:`build_features`' home."""
    return app_for(await build_features(tmp_path), graphics="halfblocks")


async def with_thumbnail(pilot: Any) -> None:
    await still(pilot)
    chat = pilot.app.screen
    assert isinstance(chat, ChatScreen)
    chat.thumbnails[PICTURE_REF.hash] = thumbnail_cells(picture())  # as if fetched
    await chat._decorate_attachments(chat.peer, [mid(100, "bob"), mid(101, "bob")])
    await still(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_chat_attachments_verified(snap_compare: Any, features_app: Any,
                                   size: tuple[int, int]) -> None:
    assert snap_compare(features_app, terminal_size=size, run_before=with_thumbnail)


@pytest.mark.parametrize("size", SIZES)
def test_wallet(snap_compare: Any, features_app: Any, size: tuple[int, int]) -> None:
    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("f10")
        await still(pilot)
        await pilot.pause(0.5)  # the tables settle (focus, cursor) on a loaded machine
        await still(pilot)
        # A table whose header was drawn before its rows came keeps stale header widths
        # until it is laid out again: draw every table afresh, then compare.
        from textual.widgets import DataTable

        for table in pilot.app.screen.query(DataTable):
            table._clear_caches()
            table.refresh(layout=True)
        await still(pilot)

    assert snap_compare(features_app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_story_compose(snap_compare: Any, features_app: Any, size: tuple[int, int]) -> None:
    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("f11", *"sunrise over the bay")
        await still(pilot)

    assert snap_compare(features_app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_story_viewer(snap_compare: Any, features_app: Any, size: tuple[int, int]) -> None:
    stories = [StoryView(bytes([n]) * 16, user("bob"), "bob", ms(f"2026-11-26 0{7 + n}:00"),
                         ms(f"2026-11-27 0{7 + n}:00"), text, image is not None, image, False,
                         n == 1)
               for n, (text, image) in enumerate([("fresh croissants", None),
                                                  ("the bay at sunrise", picture())])]

    async def before(pilot: Any) -> None:
        await still(pilot)
        screen = StoryScreen(pilot.app.client, list(stories), advance=3600)
        screen.opened = {s.id: s for s in stories}  # opened already: no relay needed
        await pilot.app.push_screen(screen)
        await still(pilot)
        screen.show(1)
        await still(pilot)

    assert snap_compare(features_app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_poll_create(snap_compare: Any, features_app: Any, size: tuple[int, int]) -> None:
    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("alt+o", *"Lunch where?", "enter", *"noodles", "enter", *"pizza")
        await still(pilot)

    assert snap_compare(features_app, terminal_size=size, run_before=before)


@pytest.mark.slow
def test_feed_large(snap_compare: Any, social_seed: Cli, relay: RelayProcess) -> None:
    cli = social_seed

    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("f2")
        await social.settle(pilot, "Release notes")

    assert snap_compare(social.app_for(cli, relay), terminal_size=(200, 60),
                        run_before=before)


@pytest.mark.parametrize("size", SIZES)
def test_devices(snap_compare: Any, features_app: Any, size: tuple[int, int]) -> None:
    async def before(pilot: Any) -> None:
        await still(pilot)
        await pilot.press("alt+l")
        await still(pilot)

    assert snap_compare(features_app, terminal_size=size, run_before=before)
