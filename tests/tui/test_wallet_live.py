"""The wallet screen against a real relay and a real chain (anvil, a block a second):
make a wallet, link it by its signature, read the balance, send a gift after the
confirmation that spells out amount, chain and address, and watch it confirm."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenchat.client.tui.screens.gift import GiftScreen
from tenchat.client.tui.screens.wallet import WalletScreen
from tests.conftest import Cli
from tests.support.anvil import Anvil
from tests.support.relay import RelayProcess
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, in_thread, screen_text, tui, until
from tests.tui.test_features_live import chat_ready, screen_of

pytestmark = pytest.mark.slow

ETH = 10**18


@pytest.fixture
def anvil() -> object:
    node = Anvil(block_time=1)
    try:
        yield node
    finally:
        node.stop()


@pytest.mark.usefixtures("paired")
@async_test
async def test_link_a_wallet_and_send_a_gift_that_confirms_live(
        cli: Cli, relay: RelayProcess, anvil: Anvil, tmp_path: Path) -> None:
    env = cli.env(**anvil.env())

    def setup() -> str:
        bob = cli("bob", "wallet", "create", "--json", env=env).json()["address"]
        cli("bob", "wallet", "link", bob, env=env)
        return str(bob)

    bob_wallet = await in_thread(setup)
    (cli.home("alice") / "chains.toml").write_text(
        f'[chains.anvil]\nchain_id = 31337\nrpc = "{anvil.url}"\nsymbol = "ETH"\n')
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        await chat_ready(pilot, app)
        await pilot.press(*"/wallet", "enter")  # the slash command
        wallet = await screen_of(pilot, app, WalletScreen)
        await pilot.press("c")
        await until(pilot, lambda: len(wallet.addresses) == 1, what="wallet made")
        mine = wallet.addresses[0]
        assert mine in screen_text(app) and "not linked" in screen_text(app)
        await pilot.press("l")
        await until(pilot, lambda: mine in wallet.linked, timeout=15, what="linked")
        await until(pilot, lambda: "✔ linked" in screen_text(app), what="✔ linked shown")
        # anyone sees the link, verified by its signature
        shown = (await in_thread(cli, "bob", "--json", "profile", "show", "alice",
                                 env=env)).json()
        assert shown["wallets"] == [mine]

        await in_thread(anvil.fund, mine, 2 * ETH)
        await pilot.press("r")
        await until(pilot, lambda: "2 ETH" in screen_text(app), timeout=15, what="balance")

        await pilot.press("g")
        gift = await screen_of(pilot, app, GiftScreen)
        await pilot.press(*"bob", "enter", *"0.5", "enter")
        await until(pilot, lambda: gift.plan is not None, timeout=20, what="planned")
        text = screen_text(app)
        assert "0.5 ETH" in text and "anvil (chain id 31337)" in text
        assert bob_wallet in text and mine in text  # to and from, in full
        assert anvil.w3.eth.get_balance(bob_wallet) == 0  # nothing signed yet
        await pilot.press("y")
        await until(pilot, lambda: app.screen is wallet, timeout=20, what="sent")
        await until(pilot, lambda: "… pending" in screen_text(app)
                    or "✔ confirmed" in screen_text(app), what="gift listed")
        await until(pilot, lambda: "✔ confirmed" in screen_text(app), timeout=20,
                    what="gift confirmed on screen")
        assert anvil.w3.eth.get_balance(bob_wallet) == ETH // 2
        assert "0.5 ETH" in screen_text(app) and "@bob" in screen_text(app)
    inbox = (await in_thread(cli, "bob", "--json", "inbox", env=env)).json_lines()
    assert [m["text"][:24] for m in inbox] == ["[gift] chain 31337 tx 0x"]
    gifts = (await in_thread(cli, "bob", "--json", "gifts", env=env)).json_lines()
    assert [(g["direction"], g["peer"], g["amount"], g["status"]) for g in gifts] == [
        ("received", "alice", "0.5", "confirmed")]
