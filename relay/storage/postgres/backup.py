"""Online backup and restore of a relay's PostgreSQL database (``tenchat-relay backup`` /
``restore`` with ``storage = "postgresql://…"``), with PostgreSQL's own tools.

``backup(url, dest)`` runs while the nodes serve: one repeatable-read transaction
exports its snapshot, counts what the report shows in it, and ``pg_dump`` dumps exactly
that snapshot (``--snapshot``) into ``DEST/relay.pgdump`` (custom format, compressed).
Blob bytes live in the database, so the dump is the whole relay. The report and the
dump describe the same instant.

``restore(src, url)`` loads such a dump into an **empty** database (no relay tables)
in one transaction (``pg_restore --single-transaction``): all or nothing. A newer relay
migrates an older schema when it starts on it.

The password, if the URL has one, goes to the tools through ``PGPASSWORD``, never on
their command line (which every local user can read).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

import asyncpg

from tenchat.common.errors import TenchatError

from ..factory import storage_label
from .schema import MIGRATIONS

__all__ = ["BackupError", "PgBackupReport", "backup", "restore", "DUMP_NAME"]

DUMP_NAME: Final = "relay.pgdump"
_COUNTS: Final = ("SELECT (SELECT version FROM schema_version), (SELECT count(*) FROM messages),"
                  " (SELECT count(*) FROM blobs), (SELECT coalesce(sum(size), 0) FROM blobs)")


class BackupError(TenchatError):
    """A backup or restore can't be made; the message says why (one line)."""


@dataclass(frozen=True, slots=True)
class PgBackupReport:
    path: Path
    schema_version: int
    messages: int
    blobs: int
    blob_bytes: int


def _tool(name: str) -> str:
    """pg_dump / pg_restore: on PATH, else the newest server's (newer reads older)."""
    found = shutil.which(name)
    if found is None:
        candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
        found = candidates[0] if candidates else None
    if found is None:
        raise BackupError(f"{name} is not installed (PostgreSQL's client tools)")
    return found


def _run(args: list[str], url: str) -> None:
    """Run a tool on the database at ``url`` (the password through the environment)."""
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        host = parts.hostname or ""
        netloc = f"{unquote(parts.username or '')}@{host}" if parts.username else host
        url = parts._replace(netloc=f"{netloc}:{parts.port}" if parts.port else netloc).geturl()
    done = subprocess.run([*args, "--dbname", url], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit status {done.returncode}"
        raise BackupError(f"{Path(args[0]).name} failed: {why}")


async def _counts(conn: asyncpg.Connection) -> tuple[int, int, int, int]:
    row = await conn.fetchrow(_COUNTS)
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


async def backup(url: str, dest: Path) -> PgBackupReport:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} is not an empty directory")
    pg_dump = _tool("pg_dump")
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BackupError(f"cannot reach {storage_label(url)}: {exc}") from None
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            try:
                version, messages, blobs, blob_bytes = await _counts(conn)
            except asyncpg.UndefinedTableError:
                raise BackupError(f"{storage_label(url)} holds no relay data") from None
            dest.mkdir(parents=True, exist_ok=True)
            path = dest / DUMP_NAME
            # (the transaction stays open: the snapshot lives as long as it does)
            _run([pg_dump, "--format=custom", "--no-owner", "--no-privileges",
                  f"--snapshot={snapshot}", f"--file={path}"], url)
    finally:
        await conn.close()
    os.chmod(path, 0o600)  # every message's ciphertext, every blob
    return PgBackupReport(path, version, messages, blobs, blob_bytes)


async def restore(src: Path, url: str) -> PgBackupReport:
    path = src / DUMP_NAME if src.is_dir() else src
    if not path.is_file():
        raise BackupError(f"{src} holds no {DUMP_NAME} (made by `tenchat-relay backup`)")
    pg_restore = _tool("pg_restore")
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BackupError(f"cannot reach {storage_label(url)}: {exc}") from None
    try:
        if await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL"):
            raise BackupError(f"{storage_label(url)} is not empty (it holds a relay's"
                              " tables): restore into a new database")
        _run([pg_restore, "--single-transaction", "--exit-on-error", "--no-owner",
              "--no-privileges", str(path)], url)
        version, messages, blobs, blob_bytes = await _counts(conn)
    finally:
        await conn.close()
    if version > len(MIGRATIONS):
        raise BackupError(f"restored schema version {version} is newer than this relay"
                          f" ({len(MIGRATIONS)}); use a newer relay")
    return PgBackupReport(path, version, messages, blobs, blob_bytes)
