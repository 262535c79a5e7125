"""Fixtures for relay tests: real relay processes on loopback with real SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import relay_options
from tests.support.relay import RelayProcess

SMALL_FRAME = 64 * 1024  # a small max_frame keeps the oversized-frame tests cheap


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """One relay shared by a test module (tests use fresh identities, so they don't meet)."""
    proc = RelayProcess(
        tmp_path_factory.mktemp("relay") / "data", args=["--max-frame", str(SMALL_FRAME)]
    )
    with proc:
        yield proc


@pytest.fixture
def fresh_relay(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RelayProcess]:
    """A relay of the test's own, for restarts, signals, shutdown and settings of its own
    (``@pytest.mark.relay(env=..., args=...)``; args replace the small max_frame)."""
    options = {"args": ["--max-frame", str(SMALL_FRAME)], **relay_options(request)}
    with RelayProcess(tmp_path / "data", **options) as proc:
        yield proc
