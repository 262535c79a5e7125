"""The table of EVM chains tenchat knows, and where their RPC endpoints come from.

No RPC URL is built in (none is tied to a provider); each comes from the
environment or from ``HOME/chains.toml``:

    TENCHAT_RPC_ETHEREUM=https://...          # the RPC of a known chain
    TENCHAT_CHAIN_DEVNET="31337 http://127.0.0.1:8545 ETH"   # a custom chain

    [chains.polygon]
    rpc = "https://..."
    [chains.devnet]                            # a custom chain
    chain_id = 31337
    rpc = "http://127.0.0.1:8545"
    symbol = "ETH"
    [chains.devnet.tokens]                     # ERC-20 tokens shown in balances
    TST = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from . import WalletError

__all__ = ["Chain", "BUILTIN", "load_chains", "find_chain", "FILENAME"]

FILENAME: Final = "chains.toml"


@dataclass(frozen=True)
class Chain:
    name: str
    chain_id: int
    symbol: str  # the native coin
    rpc: str | None = None
    tokens: dict[str, str] = field(default_factory=dict)  # symbol -> ERC-20 contract
    decimals: int = 18


BUILTIN: Final = {
    c.name: c for c in (
        Chain("ethereum", 1, "ETH"),
        Chain("polygon", 137, "POL"),
        Chain("base", 8453, "ETH"),
        Chain("arbitrum", 42161, "ETH"),
        Chain("optimism", 10, "ETH"),
        Chain("bsc", 56, "BNB"),
        Chain("avalanche", 43114, "AVAX"),
    )
}
ALIASES: Final = {"eth": "ethereum", "mainnet": "ethereum", "matic": "polygon",
                  "arb": "arbitrum", "op": "optimism", "bnb": "bsc", "binance": "bsc",
                  "avax": "avalanche"}


def _table(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise WalletError(f"{where} must be a table")
    return data


def load_chains(home: Path, env: Mapping[str, str] | None = None) -> dict[str, Chain]:
    """Built-in chains plus custom ones, with the RPC URLs the user configured."""
    env = os.environ if env is None else env
    chains = dict(BUILTIN)
    path = home / FILENAME
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise WalletError(f"{path} is not valid TOML: {exc}") from None
        for name, raw in _table(data.get("chains", {}), f"{path}: [chains]").items():
            entry = _table(raw, f"{path}: [chains.{name}]")
            name = name.lower()
            base = chains.get(name)
            chain_id = entry.get("chain_id", base.chain_id if base else None)
            if not isinstance(chain_id, int) or chain_id < 1:
                raise WalletError(f"{path}: chain {name!r} needs a positive chain_id")
            tokens = _table(entry.get("tokens", {}), f"{path}: [chains.{name}.tokens]")
            chains[name] = Chain(name, chain_id,
                                 str(entry.get("symbol", base.symbol if base else "ETH")),
                                 str(entry["rpc"]) if "rpc" in entry else None,
                                 {str(k).upper(): str(v) for k, v in tokens.items()})
    for key, value in env.items():
        if key.startswith("TENCHAT_CHAIN_") and value.strip():
            name = key[len("TENCHAT_CHAIN_"):].lower()
            parts = value.split()
            try:
                chain_id = int(parts[0])
            except ValueError:
                raise WalletError(f"{key} must be 'CHAIN_ID RPC_URL [SYMBOL]'") from None
            if len(parts) < 2:
                raise WalletError(f"{key} must be 'CHAIN_ID RPC_URL [SYMBOL]'")
            old = chains.get(name)
            chains[name] = Chain(name, chain_id, parts[2] if len(parts) > 2 else "ETH",
                                 parts[1], old.tokens if old else {})
    for name, chain in list(chains.items()):
        rpc = env.get(f"TENCHAT_RPC_{name.upper()}")
        if rpc:
            chains[name] = replace(chain, rpc=rpc)
    return chains


def find_chain(chains: dict[str, Chain], name: str | int) -> Chain:
    """A chain by name, alias or chain id; WalletError naming the known ones otherwise."""
    if isinstance(name, int) or (isinstance(name, str) and name.isdigit()):
        for chain in chains.values():
            if chain.chain_id == int(name):
                return chain
        raise WalletError(f"unknown chain id {name}")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in chains:
        raise WalletError(f"unknown chain {name!r}; known: {', '.join(sorted(chains))}")
    return chains[key]
