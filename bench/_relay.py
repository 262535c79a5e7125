"""The relay as its own process — the one harness of the benchmarks and the tests
(tests/support/relay.py re-exports :class:`RelayProcess`) — and CPU accounting read from
/proc.

The relay is started exactly as a user would start it::

    python -m tenchat.relay serve --host 127.0.0.1 --port 0 --data DIR --name NAME

and its one stdout line ``listening on ws://127.0.0.1:PORT`` (``wss://`` with TLS) gives
the port, which restarts keep::

    with RelayProcess(tmp_path / "relay") as relay:
        ...  # relay.url, relay.port, relay.data_dir, relay.pid
        relay.terminate()        # SIGTERM, wait; returns the exit status
        relay.restart()          # same data dir, same port
        relay.kill()             # SIGKILL
        relay.log_tail()         # the end of its stderr log (relay.log_path)

:class:`BenchRelay` is one on a temp data dir of its own, logging warnings only.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

__all__ = [
    "RelayProcess", "RelayStartError", "BenchRelay", "CpuSample", "ProcCpu", "machine_busy",
    "fs_type", "compile_bytecode",
]

START_TIMEOUT = 15.0
STOP_TIMEOUT = 20.0
_TICK = os.sysconf("SC_CLK_TCK")


class RelayStartError(RuntimeError):
    """The relay did not print its ``listening on`` line in time, or exited first."""


class RelayProcess:
    """A relay process (``python -m tenchat.relay serve``) on loopback, on ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        name: str = "test-relay",
        log_path: Path | None = None,
        profile: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port  # 0 until started; then the bound port, kept for restarts
        self.args = list(args)  # extra `serve` flags, e.g. ["--max-frame", "65536"]
        self.env = env  # extra environment variables
        self.name = name  # the relay name clients sign into auth
        self.profile = profile  # run the relay under cProfile, writing stats here
        self.log_path = log_path or self.data_dir.with_name(self.data_dir.name + ".log")
        self.scheme = "ws"  # "wss" when the relay serves TLS (--tls-cert)
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "never started"
        return self.proc.pid

    @property
    def command(self) -> list[str]:
        prof = ["-m", "cProfile", "-o", str(self.profile)] if self.profile else []
        return [
            sys.executable, *prof, "-m", "tenchat.relay", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--data", str(self.data_dir), "--name", self.name,
            *self.args,
        ]  # fmt: skip

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Start, and wait until it is listening (its ``listening on`` line)."""
        assert not self.running, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENCHAT_RELAY_")}
        env.update(self.env or {})
        self._log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self.proc.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise RelayStartError(f"no 'listening on' line in {timeout}s") from None
            if line is None:
                code = self.proc.wait()
                self._close_log()
                raise RelayStartError(f"relay exited with {code}: {self.log_tail()}")
            if line.startswith(("listening on ws://", "listening on wss://")):
                self.scheme = line.split("://", 1)[0].rsplit(" ", 1)[1]
                self.port = int(line.rsplit(":", 1)[1])
                return self

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout``); the exit status."""
        return self._stop(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL and wait; the exit status (-9)."""
        return self._stop(signal.SIGKILL, 10.0)

    def stop(self) -> int | None:
        """As :meth:`terminate`; None if it was never started."""
        return None if self.proc is None else self.terminate()

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
        self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text()[-chars:]
        except OSError:
            return ""

    def db_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.data_dir.glob("relay.sqlite3*"))

    def __enter__(self) -> Self:
        return self.start() if not self.running else self

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self.terminate()


class BenchRelay(RelayProcess):
    """``with BenchRelay() as relay: relay.url, relay.pid`` — a relay on a temp data dir
    (removed on exit), logging warnings and errors only."""

    def __init__(
        self,
        *,
        name: str = "bench-relay",
        data_parent: Path | None = None,
        args: Sequence[str] = (),
        profile: Path | None = None,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="tenchat-bench-", dir=data_parent)
        tmp = Path(self._tmp.name)
        super().__init__(tmp / "data", args=["--log-level", "warning", *args], name=name,
                         log_path=tmp / "relay.log", profile=profile)

    def __enter__(self) -> Self:
        try:
            return super().__enter__()
        except BaseException:
            self._tmp.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self._tmp.cleanup()


def compile_bytecode() -> None:
    """Write the tenchat packages' .pyc files, as ``pip install`` does for an installed
    package. An editable install leaves them to the first import, and with
    PYTHONDONTWRITEBYTECODE set none is ever written: every relay and CLI process started
    would compile the sources again (~0.15 s of CPU each). Files already compiled are
    skipped, so calling it again is cheap."""
    import compileall
    import importlib

    for name in ("tenchat.client", "tenchat.common", "tenchat.relay"):
        for folder in importlib.import_module(name).__path__:
            compileall.compile_dir(folder, quiet=1)


def _pump(stream: IO[str] | None, lines: queue.Queue[str | None]) -> None:
    assert stream is not None
    for line in stream:
        lines.put(line.strip())
    lines.put(None)


# --- CPU accounting -------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    at: float  # time.monotonic()
    main: float  # CPU seconds of the main thread (the event loop)
    total: float  # CPU seconds of all threads (event loop + SQLite worker threads + ...)


class ProcCpu:
    """CPU time of a process, split into its main thread and the rest (its other threads,
    and its child processes: the relay's SQLite writer process), from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def sample(self) -> CpuSample:
        at = time.monotonic()
        main = total = 0.0
        pids = [self.pid]
        while pids:
            pid = pids.pop()
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        secs = _stat_cpu(task / "stat")
                        total += secs
                        if task.name == str(self.pid):
                            main = secs
                        pids.extend(int(c) for c in (task / "children").read_text().split())
        return CpuSample(at, main, total)

    @staticmethod
    def percent(a: CpuSample, b: CpuSample) -> tuple[float, float]:
        """(main-thread %, whole-process %) of one core between two samples."""
        wall = max(b.at - a.at, 1e-9)
        return 100 * (b.main - a.main) / wall, 100 * (b.total - a.total) / wall


def _stat_cpu(path: Path) -> float:
    text = path.read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # Fields after the comm: state is fields[0]; utime and stime are stat fields 14, 15.
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat; diff two to get a busy %."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return total - idle, total


def fs_type(path: Path) -> str:
    """The file system type holding ``path`` (from /proc/mounts), e.g. ext4 or tmpfs."""
    best, kind = "", "?"
    real = str(Path(path).resolve())
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                mnt = parts[1]
                inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) > len(best):
                    best, kind = mnt, parts[2]
    return kind
