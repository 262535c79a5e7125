"""`tenchat wallet create|import|list|remove`: keys kept encrypted in the identity's cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from tests.conftest import Cli

pytestmark = pytest.mark.slow

KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = Account.from_key(bytes.fromhex(KEY)).address


def test_create_import_list_remove(cli: Cli, tmp_path: Path) -> None:
    cli("alice", "init", "--handle", "alice")
    made = cli("alice", "wallet", "create", "--json").json()["address"]
    assert made.startswith("0x") and len(made) == 42

    assert cli("alice", "wallet", "import", "0x" + KEY, "--json").json()["address"] == ADDRESS

    other = Account.create()
    keystore = tmp_path / "keystore.json"
    keystore.write_text(json.dumps(Account.encrypt(other.key, "pw", iterations=2)))
    (tmp_path / "pw").write_text("pw\n")
    got = cli("alice", "wallet", "import", "--keystore", str(keystore), "--password-file",
              str(tmp_path / "pw"), "--json").json()["address"]
    assert got == other.address

    listed = [row["address"] for row in cli("alice", "wallet", "list", "--json").json_lines()]
    assert sorted(listed) == sorted([made, ADDRESS, other.address])

    # at rest: the cache holds no private key in the clear
    raw = (cli.home("alice") / "cache.sqlite").read_bytes()
    assert bytes.fromhex(KEY) not in raw and bytes(other.key) not in raw

    cli("alice", "wallet", "remove", ADDRESS)
    listed = [row["address"] for row in cli("alice", "wallet", "list", "--json").json_lines()]
    assert ADDRESS not in listed and len(listed) == 2


@pytest.mark.parametrize(("args", "message"), [
    (["wallet", "import", "0x1234"], "a private key is 64 hex digits"),
    (["wallet", "import", "0x" + "00" * 32], "not a valid secp256k1 private key"),
    (["wallet", "remove", "0x" + "11" * 20], "no wallet"),
    (["wallet", "remove", "nope"], "is not an Ethereum address"),
    (["wallet", "import"], "give a private key or --keystore"),
])
def test_bad_input_is_one_line(cli: Cli, args: list[str], message: str) -> None:
    cli("alice", "init", "--handle", "alice")
    result = cli("alice", *args, check=False)
    assert result.code == 1
    assert result.err.count("\n") == 1 and result.err.startswith("error: ")
    assert message in result.err


def test_keystore_errors(cli: Cli, tmp_path: Path) -> None:
    cli("alice", "init", "--handle", "alice")
    keystore = tmp_path / "ks.json"
    keystore.write_text(json.dumps(Account.encrypt(Account.create().key, "right",
                                                   iterations=2)))
    wrong = cli("alice", "wallet", "import", "--keystore", str(keystore), check=False,
                env=cli.env(TENCHAT_WALLET_PASSWORD="wrong"))
    assert wrong.code == 1 and wrong.err == "error: wrong keystore password\n"
    keystore.write_text('{"version": 2}')
    bad = cli("alice", "wallet", "import", "--keystore", str(keystore), check=False,
              env=cli.env(TENCHAT_WALLET_PASSWORD="x"))
    assert bad.code == 1 and "not a V3 keystore" in bad.err


def test_importing_twice_is_refused(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("alice", "wallet", "import", KEY)
    again = cli("alice", "wallet", "import", KEY, check=False)
    assert again.code == 1 and "already here" in again.err
