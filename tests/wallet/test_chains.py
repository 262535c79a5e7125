"""The chains table: the seven built-in EVM chains, custom chains, RPC URLs only from the
environment or chains.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenchat.client.wallet import WalletError
from tenchat.client.wallet.chains import BUILTIN, find_chain, load_chains
from tenchat.client.wallet.service import format_amount, parse_amount


def test_builtin_chains_have_no_rpc_wired_in(tmp_path: Path) -> None:
    chains = load_chains(tmp_path, {})
    assert {c.name: c.chain_id for c in chains.values()} == {
        "ethereum": 1, "polygon": 137, "base": 8453, "arbitrum": 42161, "optimism": 10,
        "bsc": 56, "avalanche": 43114}
    assert all(c.rpc is None for c in chains.values())
    assert chains == BUILTIN


def test_rpc_and_custom_chains_from_env_and_file(tmp_path: Path) -> None:
    (tmp_path / "chains.toml").write_text(
        '[chains.polygon]\nrpc = "http://poly.example"\n'
        '[chains.devnet]\nchain_id = 999\nrpc = "http://dev.example"\nsymbol = "DEV"\n'
        '[chains.devnet.tokens]\ntst = "0x5FbDB2315678afecb367f032d93F642f64180aa3"\n')
    env = {"TENCHAT_RPC_ETHEREUM": "http://eth.example",
           "TENCHAT_CHAIN_LOCAL": "31337 http://127.0.0.1:8545 ETH"}
    chains = load_chains(tmp_path, env)
    assert find_chain(chains, "eth").rpc == "http://eth.example"
    assert find_chain(chains, "polygon").rpc == "http://poly.example"
    dev = find_chain(chains, "devnet")
    assert (dev.chain_id, dev.symbol, dev.tokens) == (
        999, "DEV", {"TST": "0x5FbDB2315678afecb367f032d93F642f64180aa3"})
    assert find_chain(chains, 31337).name == "local"
    assert find_chain(chains, "BNB").chain_id == 56
    with pytest.raises(WalletError, match="unknown chain 'nope'"):
        find_chain(chains, "nope")
    with pytest.raises(WalletError, match="unknown chain id 5"):
        find_chain(chains, 5)


def test_bad_config_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "chains.toml").write_text("[chains.x]\nrpc = 'http://x'\n")
    with pytest.raises(WalletError, match="needs a positive chain_id"):
        load_chains(tmp_path, {})
    with pytest.raises(WalletError, match="CHAIN_ID RPC_URL"):
        load_chains(tmp_path / "none", {"TENCHAT_CHAIN_X": "abc"})


def test_amounts() -> None:
    assert parse_amount("0.5", 18) == 5 * 10**17
    assert parse_amount("10", 6) == 10_000_000
    assert format_amount(5 * 10**17, 18) == "0.5"
    assert format_amount(10**19, 18) == "10"
    for bad in ("0", "-1", "1e-30", "x", "nan"):
        with pytest.raises(WalletError):
            parse_amount(bad, 18)
