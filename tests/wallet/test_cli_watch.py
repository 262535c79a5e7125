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


def test_watch_skips_logs_of_another_shape_and_keeps_its_cursor(cli: Cli,
                                                                 anvil: Anvil) -> None:
    """Watching an ERC-721 contract with the ERC-20 Transfer signature: each mint's log has
    the same topic but another shape. The bot skips and counts it, posts nothing, and
    saves its cursor past it, so a restarted bot does not stop at the same block again."""
    cli("alice", "init", "--handle", "alice")
    cli("alice", "group", "create", "hooks")
    (cli.home("alice") / "chains.toml").write_text(
        f'[chains.anvil]\nchain_id = 31337\nrpc = "{anvil.url}"\n')
    nft = anvil.deploy("TestNFT", "Test NFT", "TNFT")
    start = anvil.w3.eth.block_number + 1
    args = ["--json", "watch", nft.address, EVENT, "--group", "hooks", "--chain", "anvil",
            "--confirmations", "0", "--interval", "0.1"]
    bot = cli.popen("alice", *args, "--from-block", str(start))
    try:
        ready = read_lines(bot.stdout, 1, 30)  # type: ignore[arg-type]
        assert ready and json.loads(ready[0])["from_block"] == start, ready
        minted = anvil.call(nft.functions.mint(Account.create().address, 1))["blockNumber"]
        anvil.mine(2)
        assert read_lines(bot.stdout, 1, 3) == []  # type: ignore[arg-type]  # nothing posted
        assert bot.poll() is None  # and still running
    finally:
        bot.terminate()
        bot.wait(10)
    log = (cli.base / "alice.log").read_text()
    assert f"warning: skipped a log of another shape in block {minted}" in log
    assert "1 skipped so far" in log
    again = cli.popen("alice", *args)  # no --from-block: the saved cursor
    try:
        ready = read_lines(again.stdout, 1, 30)  # type: ignore[arg-type]
        assert ready and json.loads(ready[0])["from_block"] > minted, ready
    finally:
        again.terminate()
        again.wait(10)
