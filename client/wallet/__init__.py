"""Wallets: Ethereum keys held by the client, links to the identity, holdings, gifts,
NFTs and contract hooks. Every signature is made here; peers and the relay are never
trusted, the chain is. web3 and eth-account are imported only inside this package,
and only by the modules that need them (``evm``, ``keys``), so other commands stay fast.
"""

from __future__ import annotations

import sys

from ...common.errors import TenchatError

__all__ = ["WalletError", "restore_recursion_limit"]

# Before eth-account is imported: py_ecc (under it) raises the recursion limit to
# 100,000 on import. With that limit a frame nested 100,000 deep from a hostile relay
# overflows the C stack in the decoder (a segfault) instead of failing as malformed.
_RECURSION_LIMIT = sys.getrecursionlimit()


def restore_recursion_limit() -> None:
    """Put back the interpreter's recursion limit after importing eth-account or web3."""
    sys.setrecursionlimit(_RECURSION_LIMIT)


class WalletError(TenchatError):
    """A wallet operation failed; the message is one line for the user."""
