"""NFT-gated groups on a real chain (anvil): the admin's client refuses to add someone
without a token of the gate's contract; members re-check holdings from the chain."""

from __future__ import annotations

import pytest
from eth_account import Account

from tests.conftest import Cli
from tests.support.anvil import Anvil

pytestmark = pytest.mark.slow


def test_gated_join_needs_the_token(cli: Cli, anvil: Anvil) -> None:
    env = cli.env(**anvil.env())
    bob_key = Account.create()
    for who in ("alice", "bob"):
        cli(who, "init", "--handle", who, env=env)
    cli("bob", "wallet", "import", bob_key.key.hex(), env=env)
    cli("bob", "wallet", "link", bob_key.address, env=env)
    anvil.fund(bob_key.address, 10**18)
    nft = anvil.deploy("TestNFT", "Cats", "CAT")

    cli("alice", "group", "create", "cats", env=env)
    cli("alice", "wallet", "gate", "cats", nft.address, "--chain", "anvil", env=env)

    refused = cli("alice", "group", "add", "cats", "bob", check=False, env=env)
    assert refused.code == 1 and refused.err.count("\n") == 1
    assert "@bob holds no token of" in refused.err and "NFT-gated" in refused.err

    anvil.call(nft.functions.mint(bob_key.address, 42))
    cli("alice", "group", "add", "cats", "bob", env=env)

    cli("bob", "inbox", env=env)  # bob learns of the group
    held = {r["member"]: r for r in cli("bob", "wallet", "gate-check", "cats", "--json",
                                        env=env).json_lines()}
    assert held["bob"]["holds"] and held["bob"]["wallet"] == bob_key.address
    assert not held["alice"]["holds"]

    # the token moves: a member's re-check shows it
    anvil.call(nft.functions.transferFrom(bob_key.address, Account.create().address, 42),
               bytes(bob_key.key))
    held = {r["member"]: r for r in cli("alice", "wallet", "gate-check", "cats", "--json",
                                        env=env).json_lines()}
    assert not held["bob"]["holds"]
