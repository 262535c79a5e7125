"""An NFT avatar shown as the token's picture in the TUI: a real chain (anvil, the test
ERC-721 with tokenURI), metadata and image served over an IPFS gateway (a local HTTP
server standing in for one), the picture cached so that it shows again in under a
second with the gateway gone."""

from __future__ import annotations

import http.server
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from PIL import Image

from tenchat.client.tui.screens.profile import ProfileScreen
from tenchat.client.tui.widgets.image_preview import ImagePreview
from tenchat.client.wallet import nft_media
from tenchat.common.social import NftAvatar
from tests.conftest import Cli
from tests.support.anvil import Anvil
from tests.support.relay import RelayProcess
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, in_thread, tui, until
from tests.tui.test_features_live import chat_ready, screen_of

pytestmark = pytest.mark.slow

CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(out, "PNG")
    return out.getvalue()


class Gateway:
    """A stand-in IPFS gateway: /ipfs/CID/meta.json and /ipfs/CID/cat.png."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.hits: list[str] = []
        self.stopped = False
        files_ = files
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                hits.append(self.path)
                body = files_.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                if body is not None:
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ipfs/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    node = Anvil()
    try:
        yield node
    finally:
        node.stop()


@async_test
async def test_profile_shows_the_nft_avatar_picture_and_caches_it(
        cli: Cli, relay: RelayProcess, anvil: Anvil, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    meta = json.dumps({"name": "Cat #1", "image": f"ipfs://{CID}/cat.png"}).encode()
    gateway = Gateway({f"/ipfs/{CID}/meta.json": meta, f"/ipfs/{CID}/cat.png":
                       png((240, 120, 10))})
    monkeypatch.setenv("TENCHAT_IPFS_GATEWAY", gateway.url)
    env = cli.env(**anvil.env())
    key = Account.create()

    def setup() -> str:
        for who in ("alice", "bob"):
            cli(who, "init", "--handle", who, env=env)
        cli("alice", "wallet", "import", key.key.hex(), env=env)
        cli("alice", "wallet", "link", key.address, env=env)
        anvil.fund(key.address, 10**18)
        nft = anvil.deploy("TestNFT", "Cats", "CAT")
        anvil.call(nft.functions.mint(key.address, 1))
        anvil.call(nft.functions.setTokenURI(1, f"ipfs://{CID}/meta.json"))
        cli("alice", "wallet", "avatar", nft.address, "1", "--chain", "anvil", env=env)
        return str(nft.address)

    contract = await in_thread(setup)
    (cli.home("bob") / "chains.toml").write_text(
        f'[chains.anvil]\nchain_id = 31337\nrpc = "{anvil.url}"\nsymbol = "ETH"\n')
    try:
        app = tui(cli.home("bob"), relay.url, graphics="halfblocks")
        async with app.run_test(size=SIZE) as pilot:
            await chat_ready(pilot, app)
            await pilot.press("f3")
            await screen_of(pilot, app, ProfileScreen)
            await pilot.press("o", *"alice", "enter")
            profile = await until(pilot, lambda: isinstance(app.screen, ProfileScreen)
                                  and app.screen.handle == "alice" and app.screen,
                                  what="alice's profile")
            await until(pilot, lambda: profile.nft_shown is not None, timeout=20,
                        what="NFT avatar shown")
            preview = profile.query_one("#avatar", ImagePreview)
            spans = preview._text(preview.size.width).spans
            assert spans and {s.style.color.triplet for s in spans} == {(240, 120, 10)}  # type: ignore[union-attr]
            assert gateway.hits == [f"/ipfs/{CID}/meta.json", f"/ipfs/{CID}/cat.png"]
            # again, with the gateway gone: from the cache, in well under a second
            gateway.stop()
            nft = NftAvatar(chain_id=31337, contract=contract, token_id="1")
            alice = profile.view.user
            started = time.monotonic()
            data = await app.client.wallet.nft_image(alice, nft)
            assert time.monotonic() - started < 1.0
            assert data == png((240, 120, 10))
            assert nft_media.cache_path(cli.home("bob"), 31337, contract, "1").exists()
    finally:
        gateway.stop()
