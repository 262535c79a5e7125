"""Fixtures for relay tests: real relay processes on loopback with real SQLite, and the
relay in this process (tests/support/inproc.py) for the fast tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import relay_options
from tests.support.inproc import InProcRelay, StartRelay
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


@pytest_asyncio.fixture
async def relay_with(tmp_path: Path) -> AsyncIterator[StartRelay]:
    """``await relay_with(**settings)``: an in-process relay, stopped after the test."""
    started: list[InProcRelay] = []

    async def start(**settings: Any) -> InProcRelay:
        relay = InProcRelay(tmp_path / f"relay{len(started)}", **settings)
        started.append(relay)
        return await relay.start()

    yield start
    for relay in started:
        if relay.server is not None:
            await relay.stop()
