"""Start a real ``tenchat-relay`` process on loopback for a test.

    with RelayProcess(tmp_path / "relay") as relay:
        ...  # relay.url, relay.port, relay.data_dir
        relay.terminate()        # SIGTERM, wait; returns the exit status
        relay.restart()          # same data dir, same port
        relay.kill()             # SIGKILL
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Self

__all__ = ["RelayProcess", "RelayStartError"]

START_TIMEOUT = 10.0


class RelayStartError(RuntimeError):
    """The relay did not print its ``listening on`` line in time."""


class RelayProcess:
    """A relay process (``python -m tenchat.relay serve``) on a data dir of its own."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        name: str = "test-relay",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port  # 0 until started; then the bound port, kept for restarts
        self.args = list(args)  # extra `serve` flags, e.g. ["--max-frame", "65536"]
        self.env = env  # extra environment variables
        self.name = name  # the relay name clients sign into auth
        self.log_path = self.data_dir.with_name(self.data_dir.name + ".log")
        self.scheme = "ws"  # "wss" when the relay serves TLS (--tls-cert)
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Self:
        assert not self.running, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-m", "tenchat.relay", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--data", str(self.data_dir), "--name", self.name,
            *self.args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENCHAT_RELAY_")}
        env.update(self.env or {})
        self._log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self.proc.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise RelayStartError(f"no 'listening on' line in {START_TIMEOUT}s") from None
            if line is None:
                code = self.proc.wait()
                raise RelayStartError(f"relay exited with {code}: {self.log_tail()}")
            if line.startswith(("listening on ws://", "listening on wss://")):
                self.scheme = line.split("://", 1)[0].rsplit(" ", 1)[1]
                self.port = int(line.rsplit(":", 1)[1])
                return self

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; the exit status."""
        return self._stop(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL and wait; the exit status (-9)."""
        return self._stop(signal.SIGKILL, 10.0)

    def restart(self) -> Self:
        """Stop (SIGTERM) if running, then start again on the same data dir and port."""
        if self.running:
            self.terminate()
        return self.start()

    def _stop(self, sig: int, timeout: float) -> int:
        assert self.proc is not None, "never started"
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text()[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.start() if not self.running else self

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self.terminate()


def _pump(stream: IO[str] | None, lines: queue.Queue[str | None]) -> None:
    assert stream is not None
    for line in stream:
        lines.put(line.strip())
    lines.put(None)
