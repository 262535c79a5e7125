"""Online backup and offline restore of a relay's data directory.

``backup(data, dest)`` runs while the relay serves: SQLite's backup API copies the
database from one read snapshot (WAL: the relay's writer goes on meanwhile), then the
blob files that snapshot names are copied (blob files are written once, renamed into
place before their row commits, and never change, so every row of the snapshot has its
file — unless the retention deleted it since, in which case its row goes too).
Unfinished uploads are not copied; their clients restart them from offset 0.

``restore(src, data)`` fills an empty data directory (a stopped relay) from a backup.
A backup directory has the same layout as a data directory: ``relay.sqlite3`` and
``blobs/``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tenchat.common.errors import TenchatError

from .schema import MIGRATIONS

__all__ = ["BackupError", "BackupReport", "backup", "restore", "DB_NAME", "BLOB_DIR",
           "DatabaseError"]

# What the database may raise besides BackupError and OSError (the CLI reports it).
DatabaseError = sqlite3.Error

DB_NAME: Final = "relay.sqlite3"
BLOB_DIR: Final = "blobs"


class BackupError(TenchatError):
    """A backup or restore can't be made; the message says why (one line)."""


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    schema_version: int
    messages: int
    blobs: int
    blob_bytes: int
    missing_blobs: int  # rows dropped because retention deleted their file meanwhile


def _blob_path(root: Path, blob: bytes) -> Path:
    h = blob.hex()
    return root / h[:2] / h


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _empty_dir(path: Path, what: str) -> None:
    if path.exists():
        if not path.is_dir():
            raise BackupError(f"{what} {path} is not a directory")
        if any(path.iterdir()):
            raise BackupError(f"{what} {path} is not empty")


def _check(db: sqlite3.Connection, where: Path) -> int:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise BackupError(
            f"{where} has schema version {version}, newer than this relay ({len(MIGRATIONS)})"
        )
    result = db.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise BackupError(f"{where} fails the integrity check: {result}")
    return version


def _copy_db(src: Path, dst: Path) -> None:
    """One-step SQLite backup: the whole database from one read snapshot."""
    source = sqlite3.connect(src)
    try:
        source.execute("PRAGMA busy_timeout=10000")
        target = sqlite3.connect(dst)
        try:
            source.backup(target, pages=-1)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            target.close()
    finally:
        source.close()


def _copy_blobs(db_path: Path, src_blobs: Path, dst_blobs: Path) -> tuple[int, int, int]:
    """Copy every blob the database at ``db_path`` names; drop rows whose file is gone.
    (blobs, bytes, missing)."""
    db = sqlite3.connect(db_path)
    try:
        has_blobs = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'blobs'"
        ).fetchone()
        if not has_blobs:
            return 0, 0, 0
        count = size_total = 0
        missing: list[bytes] = []
        for blob, size in db.execute("SELECT hash, size FROM blobs ORDER BY hash"):
            src = _blob_path(src_blobs, blob)
            dst = _blob_path(dst_blobs, blob)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(src, dst)
            except FileNotFoundError:
                missing.append(blob)
                continue
            count += 1
            size_total += size
        if missing:
            db.executemany("DELETE FROM blobs WHERE hash = ?", [(b,) for b in missing])
            db.commit()
        return count, size_total, len(missing)
    finally:
        db.close()


def backup(data: Path, dest: Path) -> BackupReport:
    """Back up the relay data directory ``data`` (relay running or not) into ``dest``,
    a new or empty directory."""
    src_db = data / DB_NAME
    if not src_db.is_file():
        raise BackupError(f"no relay database at {src_db}")
    _empty_dir(dest, "backup destination")
    dest.mkdir(parents=True, exist_ok=True)
    # Work in a hidden directory and rename at the end: a backup that stops half-way
    # never looks complete.
    work = dest / ".incomplete"
    work.mkdir()
    try:
        _copy_db(src_db, work / DB_NAME)
        blobs, blob_bytes, missing = _copy_blobs(work / DB_NAME, data / BLOB_DIR,
                                                 work / BLOB_DIR)
        db = sqlite3.connect(work / DB_NAME)
        try:
            version = _check(db, work / DB_NAME)
            has_messages = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'"
            ).fetchone()
            messages = db.execute("SELECT count(*) FROM messages").fetchone()[0] \
                if has_messages else 0
        finally:
            db.close()
        _fsync_tree(work)
        for entry in work.iterdir():
            entry.rename(dest / entry.name)
        work.rmdir()
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupReport(dest, version, messages, blobs, blob_bytes, missing)


def restore(src: Path, data: Path) -> BackupReport:
    """Fill the empty (or missing) data directory ``data`` from the backup ``src``. The
    relay must be stopped: a running relay's data directory is never empty."""
    src_db = src / DB_NAME
    if not src_db.is_file():
        raise BackupError(f"{src} is not a relay backup (no {DB_NAME})")
    _empty_dir(data, "data directory")
    db = sqlite3.connect(f"file:{src_db}?mode=ro", uri=True)
    try:
        version = _check(db, src_db)
    finally:
        db.close()
    data.mkdir(parents=True, exist_ok=True)
    work = data / ".restoring"
    try:
        work.mkdir()
        _copy_db(src_db, work / DB_NAME)
        blobs = blob_bytes = 0
        if (src / BLOB_DIR).is_dir():
            shutil.copytree(src / BLOB_DIR, work / BLOB_DIR)
            for _dirpath, _dirs, files in os.walk(work / BLOB_DIR):
                blobs += len(files)
                blob_bytes += sum(
                    os.path.getsize(os.path.join(_dirpath, f)) for f in files
                )
        db = sqlite3.connect(work / DB_NAME)
        try:
            messages = db.execute("SELECT count(*) FROM messages").fetchone()[0] \
                if version >= 1 else 0
        finally:
            db.close()
        _fsync_tree(work)
        for entry in work.iterdir():
            entry.rename(data / entry.name)
        work.rmdir()
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)
        raise
    return BackupReport(data, version, messages, blobs, blob_bytes, 0)
