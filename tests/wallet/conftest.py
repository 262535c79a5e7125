"""Fixtures for the wallet tests: a real anvil node on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.anvil import Anvil


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    node = Anvil()
    try:
        yield node
    finally:
        node.stop()
