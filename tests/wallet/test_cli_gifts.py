"""`tenchat gift` and `tenchat gifts` on a real chain (anvil) and a real relay: alice gifts
0.5 ETH and 10 units of the project's test ERC-20 to bob; both clients settle the gifts
from the chain (receipt and Transfer logs), never from the message."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.anvil import Anvil

pytestmark = pytest.mark.slow

ETH = 10**18


def setup_pair(cli: Cli, anvil: Anvil) -> tuple[str, str, object]:
    """alice and bob, each with a linked wallet; alice's funded with 2 ETH and 100 TST."""
    env = cli.env(**anvil.env())
    for who in ("alice", "bob"):
        cli(who, "init", "--handle", who, env=env)
    alice = cli("alice", "wallet", "create", "--json", env=env).json()["address"]
    bob = cli("bob", "wallet", "create", "--json", env=env).json()["address"]
    cli("alice", "wallet", "link", alice, env=env)
    cli("bob", "wallet", "link", bob, env=env)
    token = anvil.deploy("TestToken", "Test Token", "TST", 18, 1_000_000 * ETH)
    anvil.fund(alice, 2 * ETH)
    anvil.call(token.functions.transfer(alice, 100 * ETH))
    return alice, bob, token


def test_alice_gifts_eth_and_tokens_to_bob(cli: Cli, anvil: Anvil, tmp_path: Path) -> None:
    alice, bob, token = setup_pair(cli, anvil)
    env = cli.env(**anvil.env())
    # alice names the token in her chains.toml; bob knows only the chain (environment)
    (cli.home("alice") / "chains.toml").write_text(
        f'[chains.anvil]\nchain_id = 31337\nrpc = "{anvil.url}"\nsymbol = "ETH"\n'
        f'[chains.anvil.tokens]\nTST = "{token.address}"\n')  # type: ignore[attr-defined]

    balances = cli("alice", "wallet", "balances", "--json", env=env).json_lines()
    assert {(b["symbol"], b["amount"]) for b in balances} == {("ETH", "2"), ("TST", "100")}

    # declined at the prompt: nothing signed, nothing sent
    declined = cli("alice", "gift", "bob", "0.5", "--chain", "anvil", stdin="n\n",
                   check=False, env=env)
    assert declined.code == 1 and declined.err.strip().endswith("error: not sent")
    assert "transaction to sign (EIP-1559)" in declined.out
    assert '"chainId": 31337' in declined.out and f'"to": "{bob}"' in declined.out
    # the binding's date (and when it lapses unless bob's client renews it) is shown
    today = datetime.now().strftime("%Y-%m-%d")
    assert f"(@bob's verified wallet, linked {today} " in declined.out
    lapses = (datetime.now() + timedelta(days=30)).strftime("%Y-%m-%d")
    assert f", valid until {lapses} " in declined.out
    assert anvil.w3.eth.get_balance(bob) == 0

    # confirmed at the prompt
    sent_eth = cli("alice", "gift", "bob", "0.5", "--chain", "anvil", stdin="y\n", env=env)
    assert sent_eth.code == 0 and "sent 0x" in sent_eth.out
    sent_tok = cli("alice", "gift", "bob", "10", "TST", "--chain", "anvil", "--yes", "--json",
                   env=env).json_lines()[-1]
    assert sent_tok["status"] == "pending" and sent_tok["chain_id"] == 31337

    # the chain moved exactly that
    assert anvil.w3.eth.get_balance(bob) == ETH // 2
    assert token.functions.balanceOf(bob).call() == 10 * ETH  # type: ignore[attr-defined]

    inbox = cli("bob", "--json", "inbox", env=env).json_lines()
    assert len(inbox) == 2 and all(m["text"].startswith("[gift] chain 31337 tx 0x")
                                   for m in inbox)
    assert sent_tok["tx_hash"] in inbox[1]["text"]

    for who, direction, peer in (("bob", "received", "alice"), ("alice", "sent", "bob")):
        rows = cli(who, "gifts", "--json", env=env).json_lines()
        assert [(r["direction"], r["peer"], r["status"]) for r in rows] == [
            (direction, peer, "confirmed")] * 2, rows
        assert {(r["from"], r["to"]) for r in rows} == {(alice, bob)}
        texts = [m["text"] for m in cli(who, "--json", "history", peer).json_lines()]
        # the chat rows (the TUI's gift cards) now say what the chain says
        assert texts[0].startswith("[gift] 0.5 ETH confirmed · chain 31337 tx 0x")
        if who == "alice":  # TST is in her token list
            assert [(r["amount"], r["symbol"], r["token"], r["unknown_token"])
                    for r in rows] == [("0.5", "ETH", "", False),
                                       ("10", "TST", token.address, False)]  # type: ignore[attr-defined]
            assert texts[1].startswith("[gift] 10 TST confirmed · chain 31337 tx 0x")
        else:  # bob's list names no token: the contract's own symbol() is not believed
            assert [(r["amount"], r["symbol"], r["token"], r["unknown_token"])
                    for r in rows] == [("0.5", "ETH", "", False),
                                       (str(10 * ETH), "", token.address, True)]  # type: ignore[attr-defined]
            assert texts[1].startswith(f"[gift] {10 * ETH} units of unknown token "
                                       f"{token.address} confirmed · chain 31337 tx 0x")  # type: ignore[attr-defined]


def test_gift_errors_are_one_line_and_send_nothing(cli: Cli, anvil: Anvil,
                                                   tmp_path: Path) -> None:
    alice, bob, token = setup_pair(cli, anvil)
    cli("carol", "init", "--handle", "carol")
    dead = f"31337 http://127.0.0.1:{_closed_port()} ETH"
    env = cli.env(**anvil.env(), TENCHAT_CHAIN_DOWN=dead)
    tst = token.address  # type: ignore[attr-defined]
    anvil.call(token.functions.freeze(alice, True))  # type: ignore[attr-defined]
    cases = [
        (["gift", "bob", "1", "--chain", "nochain"], "unknown chain 'nochain'"),
        (["gift", "bob", "5", "--chain", "anvil"], "insufficient funds"),
        # TST is in no token list here: the amount is in raw units (issue 21, item 3)
        (["gift", "bob", str(1000 * ETH), tst, "--chain", "anvil"], "insufficient funds"),
        (["gift", "carol", "0.1", "--chain", "anvil"], "@carol has no verified wallet linked"),
        (["gift", "bob", "0.1", "--chain", "down"], "cannot reach the RPC of down"),
        (["gift", "bob", "1", tst, "--chain", "anvil"], "the transfer would revert"),
        (["gift", "bob", "0.1", "--chain", "polygon"], "no RPC URL for chain polygon"),
        (["gift", "bob", "abc", "--chain", "anvil"], "is not an amount"),
    ]
    for args, message in cases:
        res = cli("alice", *args, "--yes", check=False, env=env)
        assert res.code == 1, (args, res)
        assert res.err.count("\n") == 1 and res.err.startswith("error: "), res.err
        assert message in res.err, (args, res.err)
    assert cli("bob", "--json", "inbox", env=env).json_lines() == []
    assert cli("alice", "gifts", "--json", env=env).json_lines() == []
    assert anvil.w3.eth.get_balance(bob) == 0


def _closed_port() -> int:
    from tests.support.anvil import free_port

    return free_port()


@pytest.mark.asyncio
async def test_gift_amounts_come_from_the_chain(cli: Cli, anvil: Anvil) -> None:
    """A gift message naming someone else's transaction, or a reverted one, is not a gift:
    bob's client marks it failed (the message carries no amount to believe)."""
    import os

    from eth_account import Account

    from tenchat.client.service import Client
    from tenchat.common import content as c
    from tests.conftest import PASSPHRASE

    alice, bob, token = setup_pair(cli, anvil)
    env = cli.env(**anvil.env())
    stranger = Account.create()
    anvil.fund(stranger.address, ETH)
    unrelated = anvil.transact({"to": bob, "value": ETH // 10}, bytes(stranger.key))

    async def send_fake_gifts() -> None:
        client = await Client.unlock(cli.home("alice"), cli.relay.url, PASSPHRASE)  # type: ignore[union-attr]
        try:
            key = await client.wallet._key(alice)
            w3 = anvil.w3
            tx = {"chainId": 31337, "nonce": w3.eth.get_transaction_count(alice), "gas": 100_000,
                  "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
                  "to": token.address, "value": 0, "data": "0xdeadbeef"}  # type: ignore[attr-defined]
            failed_hash = w3.eth.send_raw_transaction(
                Account.sign_transaction(tx, key).raw_transaction)
            assert w3.eth.wait_for_transaction_receipt(failed_hash)["status"] == 0
            bob_user = (await client.resolve("bob")).user
            for tx_hash in (bytes(unrelated["transactionHash"]), bytes(failed_hash)):
                msg_id = os.urandom(16)
                body = c.encode_content(c.Gift(id=msg_id, chain_id=31337, tx_hash=tx_hash,
                                               sent_at=1))
                row = await client.queue_message(bob_user, msg_id, 1, 0, body, "gift",
                                                  reply_to=None)
                await client.send_queued(bob_user, row)
        finally:
            await client.close()

    os.environ.update(anvil.env())
    try:
        await send_fake_gifts()
    finally:
        for k in anvil.env():
            os.environ.pop(k, None)
    assert len(cli("bob", "--json", "inbox", env=env).json_lines()) == 2
    rows = cli("bob", "gifts", "--json", env=env).json_lines()
    assert [(r["status"], r["amount"]) for r in rows] == [("failed", None), ("failed", None)]
    assert "moved nothing between the two verified wallets" in rows[0]["reason"]
    assert rows[1]["reason"] == "the transaction reverted"


def test_a_look_alike_token_is_shown_by_address(cli: Cli, anvil: Anvil) -> None:
    """A worthless token calling itself USDC is not USDC: only the configured token list
    (address per chain) names a token; any other contract is shown by address, marked
    unknown, in raw units — at the gift prompt, in `gifts` and in the chat row."""
    alice, bob, _ = setup_pair(cli, anvil)
    env = cli.env(**anvil.env())
    usdc = anvil.deploy("TestToken", "USD Coin", "USDC", 6, 10**12)
    fake = anvil.deploy("TestToken", "USD Coin", "USDC", 6, 10**12)  # same name, not listed
    for token in (usdc, fake):
        anvil.call(token.functions.transfer(alice, 10**9))
    for who in ("alice", "bob"):
        (cli.home(who) / "chains.toml").write_text(
            f'[chains.anvil]\nchain_id = 31337\nrpc = "{anvil.url}"\nsymbol = "ETH"\n'
            f'[chains.anvil.tokens]\nUSDC = "{usdc.address}"\n')  # type: ignore[attr-defined]

    prompt = cli("alice", "gift", "bob", "1000000", fake.address, "--chain", "anvil",  # type: ignore[attr-defined]
                 stdin="y\n", env=env)
    # an unknown token's amount is in raw units (its decimals() is not believed either)
    assert (f"gift to @bob: 1000000 units of UNKNOWN token {fake.address} "  # type: ignore[attr-defined]
            "(not in your token list)") in prompt.out
    assert "USDC" not in prompt.out
    cli("alice", "gift", "bob", "5", "USDC", "--chain", "anvil", "--yes", env=env)
    assert fake.functions.balanceOf(bob).call() == 10**6  # type: ignore[attr-defined]
    assert len(cli("bob", "--json", "inbox", env=env).json_lines()) == 2

    for who, peer in (("bob", "alice"), ("alice", "bob")):
        rows = cli(who, "gifts", "--json", env=env).json_lines()
        assert [(r["status"], r["symbol"], r["unknown_token"], r["amount"]) for r in rows] == [
            ("confirmed", "", True, str(10**6)), ("confirmed", "USDC", False, "5")], rows
        texts = [m["text"] for m in cli(who, "--json", "history", peer).json_lines()]
        assert texts[0].startswith(f"[gift] {10**6} units of unknown token "
                                   f"{fake.address} confirmed")  # type: ignore[attr-defined]
        assert texts[1].startswith("[gift] 5 USDC confirmed")
        human = cli(who, "gifts", env=env).out.splitlines()
        assert f"{10**6} units of UNKNOWN token {fake.address}" in human[0]  # type: ignore[attr-defined]
        assert "5 USDC" in human[1]
