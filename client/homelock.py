"""One writer at a time on a home: an OS file lock around every transaction on its state.

Every unit of work that reads and then writes crypto state (ratchet sessions, prekeys,
sender keys, the outbox) runs inside ``async with cache.transaction()`` (client/cache/store.py),
which holds this lock. It used to be an ``asyncio.Lock``, which serialises the tasks of one
process only: two ``tenchat send`` in parallel on one home each read the same ratchet
state, each encrypted with the same message key, and the peer could decrypt only one of
them (issue 12, item 4). It also let two processes each start a session with a peer that
had none.

:class:`HomeLock` is that asyncio lock **plus** ``flock(LOCK_EX)`` on ``HOME/lock``, taken
per transaction — not per process. A TUI left open for days holds it only for the
milliseconds of each transaction (a received batch, a send), so a script sending from the
same home waits at most that long; a per-process lock would make every script wait for
the TUI to quit. The price is that anything read before the lock may be stale once it is
held: code inside the lock re-reads what it writes back (sessions, the deferred outbox,
the highest prekey id), which it already had to for the tasks of one process.

``flock`` locks belong to the open file, so the kernel drops them when a process dies
(even by SIGKILL): a crashed command never leaves the home locked. The lock is waited for
by polling with ``LOCK_NB`` (a blocking ``flock`` can't be given a timeout or cancelled);
after ``timeout`` seconds :class:`HomeLocked` says which home and what to check.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from ..common.errors import TenchatError

__all__ = ["HomeLock", "HomeLocked", "LOCK_FILENAME", "DEFAULT_TIMEOUT", "lock_timeout"]

LOCK_FILENAME = "lock"
DEFAULT_TIMEOUT = 30.0  # s; TENCHAT_LOCK_TIMEOUT overrides
_FIRST_WAIT = 0.001  # s, first poll interval; doubles up to _MAX_WAIT
_MAX_WAIT = 0.025


class HomeLocked(TenchatError):
    """Another process held the home's lock for longer than the timeout."""


def lock_timeout() -> float:
    """The wait for a home's lock: TENCHAT_LOCK_TIMEOUT (seconds) if set, else 30 s."""
    raw = os.environ.get("TENCHAT_LOCK_TIMEOUT", "")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise TenchatError(f"TENCHAT_LOCK_TIMEOUT must be a number of seconds, not {raw!r}"
                           ) from None
    if not value >= 0:
        raise TenchatError("TENCHAT_LOCK_TIMEOUT must be a number of seconds ≥ 0")
    return value


class HomeLock:
    """``async with lock:`` — this process's tasks one at a time, and one process at a time."""

    def __init__(self, home: Path, timeout: float | None = None) -> None:
        self.path = home / LOCK_FILENAME
        self.timeout = lock_timeout() if timeout is None else timeout
        self._local = asyncio.Lock()
        self._fd: int | None = None

    def locked(self) -> bool:
        return self._local.locked()

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def _try(self) -> bool:
        try:
            fcntl.flock(self._open(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    async def acquire(self) -> None:
        await self._local.acquire()
        try:
            if self._try():
                return
            deadline = time.monotonic() + self.timeout
            wait = _FIRST_WAIT
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HomeLocked(
                        f"another tenchat process has held {self.path.parent} busy for "
                        f"{self.timeout:g} s; try again, or check for a stuck tenchat "
                        "(TENCHAT_LOCK_TIMEOUT sets the wait)"
                    )
                await asyncio.sleep(min(wait, left))
                wait = min(wait * 2, _MAX_WAIT)
                if self._try():
                    return
        except BaseException:
            self._local.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._local.release()

    def close(self) -> None:
        """Close the lock file (releases the OS lock if held). Only when no task holds it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
