"""Shared fixtures: a real relay process on loopback and a `tenchat` CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.relay import RelayProcess

PASSPHRASE = "correct horse battery staple"


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
        return subprocess.Popen(
            [sys.executable, "-m", "tenchat.client", "--home", str(self.home(who)), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env(),
        )


@pytest.fixture
def cli(tmp_path: Path, relay: RelayProcess) -> Cli:
    return Cli(tmp_path, relay)


@pytest.fixture
def offline_cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, None)
