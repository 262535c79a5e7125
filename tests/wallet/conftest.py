"""Fixtures for the wallet tests: a real anvil node on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.anvil import Anvil


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    """One chain per test module (a start is ~1 s): each test deploys its own contracts
    and pays fresh wallets, and a watcher starts at the current block, so tests on one
    chain don't meet."""
    node = Anvil()
    try:
        yield node
    finally:
        node.stop()
