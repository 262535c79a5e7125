"""The relay's data directory is private: the directory 0700, every file in it 0600,
whatever the umask the relay was started with.

The database file is created 0600 before SQLite opens it, and SQLite gives its ``-wal``
and ``-shm`` files the database file's mode; blob files and their directories are
created with explicit modes (relay/blobs.py). An existing data directory from an older
relay is tightened at start-up: the directory, its top-level files and its directories.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "private_file", "secure_data_dir"]

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) 0700; tighten it if it exists."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != DIR_MODE:
        os.chmod(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 if missing; tighten it if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def secure_data_dir(data: Path, db_path: Path) -> None:
    """Make ``data`` private before the relay writes into it: the directory 0700, the
    database file there (created empty, so SQLite's own files inherit 0600), every
    existing top-level file 0600 and every directory under ``data`` 0700 (blob files are
    reached only through those)."""
    private_dir(data)
    private_file(db_path)
    with os.scandir(data) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    _tighten_dirs(Path(entry.path))
                elif (entry.is_file(follow_symlinks=False)
                      and entry.stat().st_mode & 0o777 != FILE_MODE):
                    os.chmod(entry.path, FILE_MODE)


def _tighten_dirs(root: Path) -> None:
    for dirpath, _dirs, _files in os.walk(root):
        with contextlib.suppress(OSError):
            if os.stat(dirpath).st_mode & 0o777 != DIR_MODE:
                os.chmod(dirpath, DIR_MODE)
