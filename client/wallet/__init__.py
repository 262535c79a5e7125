"""Wallets: Ethereum keys held by the client, links to the identity, holdings, gifts,
NFTs and contract hooks. Every signature is made here; peers and the relay are never
trusted, the chain is. web3 and eth-account are imported only inside this package,
and only by the modules that need them (``evm``, ``keys``), so other commands stay fast.
"""

from __future__ import annotations

from ...common.errors import TenchatError

__all__ = ["WalletError"]


class WalletError(TenchatError):
    """A wallet operation failed; the message is one line for the user."""
