"""Shared fixtures: a real relay process on loopback, in-process clients on it
(``people``, ``client``, ``two_clients``, ``group``) and a `tenchat` CLI runner."""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from tests.support.clients import PASSPHRASE, Group, Pair, People
from tests.support.relay import RelayProcess, compile_bytecode
from tests.support.services import nats_service, postgres_service  # noqa: F401 (fixtures)

if TYPE_CHECKING:
    from tenchat.client.service import Client

# In-process clients (Client.create) seal their keystores quickly too; the CLI runner
# passes it on explicitly. tests/client/test_keystore.py checks the MODERATE default.
os.environ.setdefault("TENCHAT_KDF", "interactive")


def pytest_configure(config: pytest.Config) -> None:
    # The relay and CLI processes the tests start (hundreds) then load the sources'
    # bytecode instead of compiling them each time. Once, before xdist's workers start.
    if not hasattr(config, "workerinput"):
        compile_bytecode()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item
                                  ) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The event loops async tests run on: asyncio's own, and uvloop (the relay's loop in
    production, relay/server.py) for a test that asks for it with
    ``@pytest.mark.asyncio(loop_factories=["uvloop"])`` (or both, by name)."""
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop}
    marker = item.get_closest_marker("asyncio")
    if marker is not None and "uvloop" in marker.kwargs.get("loop_factories", ()):
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    return factories


def relay_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The test's ``@pytest.mark.relay(env={...}, args=[...])``: settings for the relay
    the ``relay`` fixture starts (``RelayProcess``'s keyword arguments)."""
    marker = request.node.get_closest_marker("relay")
    return dict(marker.kwargs) if marker is not None else {}


@pytest.fixture
def relay(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RelayProcess]:
    """A relay of the test's own (settings from ``@pytest.mark.relay``): clients register
    fixed handles ("alice", "bob"), which two tests on one relay would fight over.
    (tests/relay/ shares one per module: its raw clients use fresh keys, no handles.)"""
    with RelayProcess(tmp_path / "relay", **relay_options(request)) as proc:
        yield proc


# --- in-process clients (tests/support/clients.py) -------------------------------------


@pytest_asyncio.fixture
async def people(tmp_path: Path, relay: RelayProcess) -> AsyncIterator[People]:
    """Makes named clients on the test's relay: ``alice, bob = await people("alice",
    "bob")``; all are closed after the test."""
    made = People(tmp_path, relay.url)
    try:
        yield made
    finally:
        await made.close()


@pytest_asyncio.fixture
async def client(people: People) -> Client:
    """alice, registered on the test's relay."""
    return await people.one("alice")


@pytest_asyncio.fixture
async def two_clients(people: People) -> Pair:
    """alice and bob, registered on the test's relay (they have not talked yet)."""
    alice, bob = await people("alice", "bob")
    return alice, bob


@pytest_asyncio.fixture
async def group(people: People) -> Group:
    """A group "team" alice created with bob and carol in it."""
    alice, bob, carol = await people("alice", "bob", "carol")
    gid = await alice.groups.create("team", ["bob", "carol"])
    return Group(gid, alice, (bob, carol))


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


class Cli:
    """Runs `python -m tenchat.client ...` as a script would, one home per identity."""

    def __init__(self, base: Path, relay: RelayProcess | None) -> None:
        self.base = base
        self.relay = relay

    def home(self, name: str) -> Path:
        return self.base / "homes" / name

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENCHAT_")}
        env["TENCHAT_PASSPHRASE"] = PASSPHRASE
        env["TENCHAT_KDF"] = "interactive"  # keystores at rest default to MODERATE (~0.5 s)
        if self.relay is not None:
            env["TENCHAT_RELAY"] = self.relay.url
        env.update(extra)
        return env

    def __call__(self, who: str, *args: str, stdin: str | None = None, check: bool = True,
                 env: dict[str, str] | None = None, timeout: float = 60) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "tenchat.client", "--home", str(self.home(who)), *args],
            input=stdin, capture_output=True, text=True, env=env or self.env(), timeout=timeout,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"tenchat {' '.join(args)} exited {proc.returncode}: "
                                 f"{proc.stderr}")
        return result

    def popen(self, who: str, *args: str) -> subprocess.Popen[str]:
        log = (self.base / f"{who}.log").open("a")
        return subprocess.Popen(
            [sys.executable, "-m", "tenchat.client", "--home", str(self.home(who)), *args],
            stdout=subprocess.PIPE, stderr=log, text=True, env=self.env(TENCHAT_LOG="debug"),
        )


def read_lines(stream: IO[str], count: int, timeout: float, *, until: str = "") -> list[str]:
    """Up to ``count`` lines from a child's pipe within ``timeout`` (no buffering surprises:
    select() can't see lines already pulled into a TextIOWrapper's buffer)."""
    fd = stream.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while buf.count(b"\n") < count and time.monotonic() < deadline:
        if until and until.encode() in buf:
            break
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
    return [line.decode() for line in buf.splitlines()][:count]


@pytest.fixture
def cli(tmp_path: Path, relay: RelayProcess) -> Cli:
    return Cli(tmp_path, relay)


@pytest.fixture
def offline_cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, None)
