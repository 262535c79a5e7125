"""`tenchat watch`: a contract hook on a real chain (anvil) posts the project's test
token's Transfer events into a group, only after N confirmations."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from tests.conftest import Cli, read_lines
from tests.support.anvil import Anvil

pytestmark = pytest.mark.slow

EVENT = "Transfer(address indexed sender, address indexed receiver, uint256 value)"


def test_watch_posts_after_n_confirmations(cli: Cli, anvil: Anvil) -> None:
    for who in ("alice", "bob"):
        cli(who, "init", "--handle", who)
    cli("alice", "group", "create", "hooks", "bob")
    (cli.home("alice") / "chains.toml").write_text(
        f'[chains.anvil]\nchain_id = 31337\nrpc = "{anvil.url}"\n')
    token = anvil.deploy("TestToken", "Test Token", "TST", 18, 10**24)
    receiver = Account.create().address

    start = anvil.w3.eth.block_number + 1
    bot = cli.popen("alice", "--json", "watch", token.address, EVENT, "--group", "hooks",
                    "--chain", "anvil", "--confirmations", "3", "--interval", "0.1",
                    "--from-block", str(start))
    try:
        ready = read_lines(bot.stdout, 1, 30)  # type: ignore[arg-type]
        assert ready and json.loads(ready[0])["from_block"] == start, ready
        receipt = anvil.call(token.functions.transfer(receiver, 7 * 10**18))
        block = receipt["blockNumber"]
        anvil.mine(2)  # 2 blocks on top: not deep enough yet
        assert read_lines(bot.stdout, 1, 3) == []  # type: ignore[arg-type]
        anvil.mine(1)  # 3 on top: posted
        lines = read_lines(bot.stdout, 1, 20)  # type: ignore[arg-type]
        assert len(lines) == 1, lines
        posted = json.loads(lines[0])
        assert posted["event"] == "Transfer" and posted["block"] == block
        assert posted["values"] == {"sender": anvil.w3.eth.accounts[0], "receiver": receiver,
                                    "value": str(7 * 10**18)}
    finally:
        bot.terminate()
        bot.wait(10)
    got = [m for m in cli("bob", "--json", "inbox").json_lines() if m.get("group")]
    assert len(got) == 1
    assert got[0]["text"].startswith(f"[Transfer] sender={anvil.w3.eth.accounts[0]}, "
                                     f"receiver={receiver}, value={7 * 10**18} (block {block}")
