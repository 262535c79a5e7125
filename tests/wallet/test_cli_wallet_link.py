"""`tenchat wallet link|unlink|signin` and `tenchat profile show` listing verified wallets,
end to end through a real relay."""

from __future__ import annotations

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.slow


def test_link_show_signin_unlink(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    address = cli("alice", "wallet", "create", "--json").json()["address"]
    unlinked = cli("alice", "wallet", "create", "--json").json()["address"]

    # not linked yet: no sign-in with it, and nobody sees it
    refused = cli("alice", "wallet", "signin", address, check=False)
    assert refused.code == 1 and refused.err.startswith("error: ")
    assert "linked to no identity" in refused.err
    assert cli("bob", "profile", "show", "alice", "--json").json()["wallets"] == []

    linked = cli("alice", "wallet", "link", address, "--json").json()
    assert linked["address"] == address

    shown = cli("bob", "profile", "show", "alice", "--json").json()
    assert shown["wallets"] == [address]
    assert f"wallet {address} (verified)" in cli("bob", "profile", "show", "alice").out
    listed = {r["address"]: r["linked"] for r in cli("alice", "wallet", "list",
                                                     "--json").json_lines()}
    assert listed == {address: True, unlinked: False}

    signed_in = cli("alice", "wallet", "signin", address, "--json").json()
    assert signed_in["handle"] == "alice" and signed_in["wallet"] == address

    cli("alice", "wallet", "unlink", address)
    assert cli("bob", "profile", "show", "alice", "--json").json()["wallets"] == []
    again = cli("alice", "wallet", "unlink", address, check=False)
    assert again.code == 1 and again.err == f"error: {address} is not linked to you\n"
