"""The shared services some tests need: PostgreSQL and NATS, real, on loopback.

``TENCHAT_TEST_POSTGRES`` (a libpq URL) and ``TENCHAT_TEST_NATS`` (``nats://…``) name
them; unset, the standard local ports are tried. A service that does not answer skips
its tests with one line saying why, so a laptop without it still passes the README's
test command — unless ``TENCHAT_REQUIRE_SERVICES=1`` (set by ``.ci/run``), which makes
it a failure: CI must never pass by skipping them.

Tests take them as the fixtures ``postgres_service`` and ``nats_service`` (URLs).
:class:`NatsServer` runs a private ``nats-server`` on a free port, for tests that stop
and restart the bus, and :class:`PostgresServer` a private PostgreSQL server, for tests
that stop and restart the database (never the shared ones: others use them).
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import pytest

__all__ = ["postgres_url", "postgres_schema", "nats_url", "require_service", "NatsServer",
           "PostgresServer", "free_port",
           "postgres_service", "nats_service", "POSTGRES_ENV", "NATS_ENV", "REQUIRE_ENV"]

POSTGRES_ENV = "TENCHAT_TEST_POSTGRES"
NATS_ENV = "TENCHAT_TEST_NATS"
REQUIRE_ENV = "TENCHAT_REQUIRE_SERVICES"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_NATS = "nats://127.0.0.1:4222"


def _reachable(url: str, default_port: int) -> str | None:
    """None if something accepts TCP connections at ``url``'s host and port, else why not."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return None
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"


def require_service(name: str, env: str, url: str, default_port: int) -> str:
    """``url`` if the service answers; else skip (or fail under TENCHAT_REQUIRE_SERVICES)."""
    problem = _reachable(url, default_port)
    if problem is None:
        return url
    message = f"{name} not reachable at {url} ({problem}); set {env} to run these tests"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} [{REQUIRE_ENV}=1: services are required here]",
                    pytrace=False)
    pytest.skip(message)


def postgres_url() -> str:
    """The test PostgreSQL (TENCHAT_TEST_POSTGRES, else the local default), or skip."""
    url = os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES
    return require_service("PostgreSQL", POSTGRES_ENV, url, 5432)


@contextlib.asynccontextmanager
async def postgres_schema(prefix: str) -> AsyncIterator[tuple[Any, str]]:
    """A fresh schema on the test PostgreSQL (or skip) and a connection of the test's own
    (an ``asyncpg.Connection``, outside any store); the schema is dropped afterwards.
    Stores under test take ``schema=`` the name yielded."""
    import asyncpg

    schema = f"{prefix}_{secrets.token_hex(8)}"
    conn = await asyncpg.connect(postgres_url())
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        yield conn, schema
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def nats_url() -> str:
    """The test NATS server (TENCHAT_TEST_NATS, else the local default), or skip."""
    url = os.environ.get(NATS_ENV) or DEFAULT_NATS
    return require_service("NATS", NATS_ENV, url, 4222)


@pytest.fixture(scope="session")
def postgres_service() -> str:
    """The test PostgreSQL's URL (tests/conftest.py makes it every test's fixture)."""
    return postgres_url()


@pytest.fixture(scope="session")
def nats_service() -> str:
    """The test NATS server's URL."""
    return nats_url()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _missing(message: str) -> None:
    """Skip for a missing binary (fail under TENCHAT_REQUIRE_SERVICES=1)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} [{REQUIRE_ENV}=1: services are required here]", pytrace=False)
    pytest.skip(message)


class NatsServer:
    """A private nats-server process on a free port that a test may stop and restart
    (on the same port, so clients reconnect to it)."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            _missing("nats-server is not installed; it is needed to restart a bus in a test")
            raise AssertionError  # (not reached)
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "nats.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 10
        while _reachable(self.url, self.port) is not None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill it (SIGKILL: in-flight messages are lost, as in a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _postgres_bin() -> Path | None:
    """The directory of PostgreSQL's server programs (initdb, pg_ctl), if installed."""
    found = shutil.which("pg_ctl")
    if found is not None and shutil.which("initdb") is not None:
        return Path(found).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


class PostgresServer:
    """A private PostgreSQL server (initdb into a directory of its own, a free port on
    loopback, trust authentication) that a test may stop and start again on the same
    port. Run as the ``postgres`` user when the tests run as root (the server refuses
    root). ``url`` names its ``postgres`` database."""

    def __init__(self) -> None:
        bindir = _postgres_bin()
        if bindir is None:
            _missing("PostgreSQL's server programs (initdb, pg_ctl) are not installed; "
                     "they are needed to stop a database in a test")
            raise AssertionError  # (not reached)
        self.bindir = bindir
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # Not under pytest's tmp_path: the server's user must be able to reach it.
        self.root = Path(tempfile.mkdtemp(prefix="tenchat-pg-"))
        self.data = self.root / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "-A", "trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
                   " -c fsync=off -c max_connections=60")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.root / "server.log"), "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop at once (``immediate``: connections cut, nothing finished, as in a crash);
        the next start recovers."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                  "-w", "stop")

    def __enter__(self) -> Self:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            if (self.data / "postmaster.pid").exists():
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
