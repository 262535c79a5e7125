"""Shared fixtures: a real relay process on loopback and a `tenchat` CLI runner."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support.relay import RelayProcess
from tests.support.services import nats_service, postgres_service  # noqa: F401 (fixtures)

PASSPHRASE = "correct horse battery staple"
# In-process clients (Client.create) seal their keystores quickly too; the CLI runner
# passes it on explicitly. tests/client/test_keystore.py checks the MODERATE default.
os.environ.setdefault("TENCHAT_KDF", "interactive")


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    proc = RelayProcess(tmp_path / "relay").start()
    try:
        yield proc
    finally:
        if proc.running:
            proc.terminate()


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
