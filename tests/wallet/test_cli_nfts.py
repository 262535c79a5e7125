"""NFTs on a real chain (anvil, the project's own ERC-721): listing a linked wallet's
tokens, and an NFT avatar others show only while its owner holds the token."""

from __future__ import annotations

import pytest
from eth_account import Account

from tests.conftest import Cli
from tests.support.anvil import Anvil

pytestmark = pytest.mark.slow


def test_nft_list_and_avatar_follow_the_chain(cli: Cli, anvil: Anvil) -> None:
    env = cli.env(**anvil.env())
    key = Account.create()
    for who in ("alice", "bob"):
        cli(who, "init", "--handle", who, env=env)
    cli("alice", "wallet", "import", key.key.hex(), env=env)
    cli("alice", "wallet", "link", key.address, env=env)
    anvil.fund(key.address, 10**18)
    nft = anvil.deploy("TestNFT", "Cats", "CAT")
    contract = nft.address
    for token_id, to in ((1, key.address), (2, key.address),
                         (3, Account.create().address)):
        anvil.call(nft.functions.mint(to, token_id))

    mine = cli("alice", "wallet", "nfts", contract, "--chain", "anvil", "--json",
               env=env).json_lines()
    assert [(r["wallet"], r["token_id"]) for r in mine] == [(key.address, "1"),
                                                            (key.address, "2")]
    seen = cli("bob", "wallet", "nfts", contract, "--of", "alice", "--chain", "anvil",
               "--json", env=env).json_lines()
    assert [r["token_id"] for r in seen] == ["1", "2"]

    refused = cli("alice", "wallet", "avatar", contract, "3", "--chain", "anvil", check=False,
                  env=env)
    assert refused.code == 1 and "none of your linked wallets holds token 3" in refused.err

    cli("alice", "wallet", "avatar", contract, "1", "--chain", "anvil", env=env)
    shown = cli("bob", "profile", "show", "alice", "--json", env=env).json()
    assert shown["nft_avatar"] == {"chain_id": 31337, "contract": contract, "token_id": "1"}

    # the token moves away: bob's client stops showing it
    anvil.call(nft.functions.transferFrom(key.address, Account.create().address, 1),
               bytes(key.key))
    assert cli("bob", "profile", "show", "alice", "--json", env=env).json()["nft_avatar"] \
        is None
    # a token still held shows, but only where the chain can be asked
    cli("alice", "wallet", "avatar", contract, "2", "--chain", "anvil", env=env)
    shown = cli("bob", "profile", "show", "alice", "--json", env=env).json()
    assert shown["nft_avatar"]["token_id"] == "2"
    assert cli("bob", "profile", "show", "alice", "--json").json()["nft_avatar"] is None
