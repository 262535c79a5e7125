"""One relay process per data directory: an exclusive lock on ``relay.lock`` in it.

The SQLite store keeps sequence numbers and queue counters in memory beside its single
writer, so a second process on the same directory does not fail at once: it starts,
and then its writes collide with the first's (seen: every send through it answered
``internal``). The lock makes the second one refuse to start instead. The kernel drops
it when the process ends, however it ends (a SIGKILL leaves no stale lock).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .files import FILE_MODE

__all__ = ["DataDirLock"]


class DataDirLock:
    def __init__(self, data: Path) -> None:
        self.path = data / "relay.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock; OSError naming the problem if another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OSError(
                f"another relay process is serving {self.path.parent}: relay processes "
                "cannot share a data directory (several relay nodes share a store and a "
                "bus instead; docs/operations.md)") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # (closing drops the lock)
            self._fd = None
