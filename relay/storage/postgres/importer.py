"""``tenchat-relay migrate-store --to postgresql://…``: a SQLite relay's data, moved.

Copies every table of a stopped relay's ``relay.sqlite3`` (at the current schema) into an
empty PostgreSQL database, with the blob files into ``blob_data``, in one transaction;
sets the sequences past every seq, gseq and id used (so nothing is handed out twice and
every identity, queue, cursor and group stays as it was); then verifies, table by table,
the row count and an order-independent checksum (the sum of each row's SHA-256), and
that every blob's bytes hash to its id.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg

from tenchat.common.crypto.media import new_hasher

from ..factory import storage_label
from ..sqlite.schema import MIGRATIONS as SQLITE_MIGRATIONS
from .schema import RECOUNT_QUEUES, migrate

__all__ = ["MigrateError", "ImportReport", "import_sqlite"]

_BOOLEAN: Final = {("groups", "announce"), ("group_log", "change"),
                   ("privacy", "hide_presence"), ("profiles", "private"),
                   ("sealed_access", "anyone")}
_CHUNK: Final = 1024 * 1024  # bytes per blob_data row
_BATCH: Final = 10_000  # rows per COPY


class MigrateError(Exception):
    """The data can't be moved; the message says why (one line)."""


@dataclass
class ImportReport:
    tables: dict[str, int] = field(default_factory=dict)  # rows copied and verified
    blobs: int = 0
    blob_bytes: int = 0
    missing_blobs: int = 0  # rows whose file was gone (as they were in SQLite)


def _column(name: str) -> str:
    return "user_id" if name == "user" else name


def _quoted(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


# SQLite's dedupe keys are in two tables, PostgreSQL's in one: `sent_log` holds the
# latest, not yet folded into `sent` (relay/storage/sqlite/sent_log.py; a key folded but
# not yet deleted from the log is in both, the same row).
_NOT_COPIED: Final = ("sqlite_sequence", "sent_log")
_SOURCE: Final = {"sent": "SELECT sender, msg_id, seq, at FROM sent UNION"
                          " SELECT sender, msg_id, seq, at FROM sent_log"}


def _tables(src: sqlite3.Connection) -> dict[str, list[str]]:
    names = [r[0] for r in src.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        if r[0] not in _NOT_COPIED]
    return {t: [r[1] for r in src.execute(f'PRAGMA table_info("{t}")')] for t in names}


def _select(table: str, columns: list[str]) -> str:
    """What ``table``'s rows are in the SQLite database."""
    if table in _SOURCE:
        assert columns == ["sender", "msg_id", "seq", "at"], columns
        return _SOURCE[table]
    return f'SELECT {_quoted(columns)} FROM "{table}"'


def _row_sum(rows: Iterable[Iterable[Any]]) -> tuple[int, int]:
    """(count, checksum): the sum mod 2**256 of each row's SHA-256 over a canonical form
    (booleans as integers), so the order rows come in does not matter."""
    count = total = 0
    for row in rows:
        digest = hashlib.sha256(repr([
            int(v) if isinstance(v, bool) else bytes(v) if isinstance(v, memoryview) else v
            for v in row]).encode()).digest()
        total = (total + int.from_bytes(digest, "big")) % 2**256
        count += 1
    return count, total


async def import_sqlite(data: Path, url: str) -> ImportReport:
    """Move the relay data in ``data`` (stopped) into the empty database at ``url``."""
    path = data / "relay.sqlite3"
    if not path.is_file():
        raise MigrateError(f"no relay database at {path}")
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version = src.execute("PRAGMA user_version").fetchone()[0]
        if version != len(SQLITE_MIGRATIONS):
            raise MigrateError(f"{path} has schema version {version}, this relay"
                               f" {len(SQLITE_MIGRATIONS)}: start the matching relay once")
        try:
            conn = await asyncpg.connect(url)
            try:
                return await _copy_and_verify(src, conn, data / "blobs")
            finally:
                await conn.close()
        except (OSError, sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise MigrateError(f"cannot move the data to {storage_label(url)}: {exc}") from exc
    finally:
        src.close()


async def _copy_and_verify(src: sqlite3.Connection, conn: asyncpg.Connection,
                           blob_dir: Path) -> ImportReport:
    await migrate(conn)
    tables = _tables(src)
    for table in [*tables, "blob_data"]:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
            raise MigrateError(f"the target database is not empty ({table} has rows);"
                               " give it an empty database")
    report = ImportReport()
    async with conn.transaction():
        for table, columns in tables.items():
            await _copy_table(src, conn, table, columns)
        await conn.execute(RECOUNT_QUEUES)  # the queue caps' counters (SQLite has none)
        await _set_sequences(src, conn)
        await _copy_blobs(src, conn, blob_dir, report)
    for table, columns in tables.items():
        report.tables[table] = await _verify_table(src, conn, table, columns)
    await _verify_blobs(conn, report)
    return report


async def _copy_table(src: sqlite3.Connection, conn: asyncpg.Connection, table: str,
                      columns: list[str]) -> None:
    flags = [(table, c) in _BOOLEAN for c in columns]
    cursor = src.execute(_select(table, columns))
    while rows := cursor.fetchmany(_BATCH):
        records = [tuple(bool(v) if flag else v for v, flag in zip(row, flags, strict=True))
                   for row in rows]
        await conn.copy_records_to_table(table, records=records,
                                         columns=[_column(c) for c in columns])


async def _set_sequences(src: sqlite3.Connection, conn: asyncpg.Connection) -> None:
    """Every sequence past what the SQLite relay handed out (its sqlite_sequence too: a
    blocked send's seq was recorded there, never in a table)."""
    used = dict(src.execute("SELECT name, seq FROM sqlite_sequence").fetchall())

    def top(*sqls: str) -> int:
        return max([0, *(src.execute(sql).fetchone()[0] or 0 for sql in sqls)])

    tops = {
        "message_seq": max(used.get("messages", 0), top(
            "SELECT max(seq) FROM messages", "SELECT max(seq) FROM sent",
            "SELECT max(seq) FROM sent_log")),
        "group_seq": top("SELECT max(gseq) FROM group_log", "SELECT max(last_gseq) FROM groups",
                         "SELECT max(gseq) FROM group_sent"),
    }
    for table, column in (("posts", "seq"), ("comments", "seq"), ("stories", "seq"),
                          ("bans", "id"), ("audit", "id")):
        name = await conn.fetchval("SELECT pg_get_serial_sequence($1, $2)", table, column)
        tops[name] = max(used.get(table, 0), top(f"SELECT max({column}) FROM {table}"))
    for sequence, value in tops.items():
        if value:
            await conn.execute("SELECT setval($1::regclass, $2)", sequence, value)


async def _copy_blobs(src: sqlite3.Connection, conn: asyncpg.Connection, blob_dir: Path,
                      report: ImportReport) -> None:
    for (blob,) in src.execute("SELECT hash FROM blobs ORDER BY hash"):
        h = bytes(blob).hex()
        try:
            data = (blob_dir / h[:2] / h).read_bytes()
        except FileNotFoundError:
            report.missing_blobs += 1
            continue
        await conn.executemany(
            "INSERT INTO blob_data (hash, pos, data) VALUES ($1, $2, $3)",
            [(bytes(blob), pos, data[pos : pos + _CHUNK])
             for pos in range(0, max(len(data), 1), _CHUNK)])


async def _verify_table(src: sqlite3.Connection, conn: asyncpg.Connection, table: str,
                        columns: list[str]) -> int:
    want = _row_sum(src.execute(_select(table, columns)))
    async with conn.transaction():
        got = _row_sum([r async for r in conn.cursor(
            f"SELECT {', '.join(_column(c) for c in columns)} FROM {table}")])
    if got != want:
        raise MigrateError(f"{table}: {got[0]} rows copied of {want[0]}, or a checksum"
                           " differs; the target database holds a failed copy: drop it")
    return got[0]


async def _verify_blobs(conn: asyncpg.Connection, report: ImportReport) -> None:
    async with conn.transaction():
        hasher, current = new_hasher(), None
        async for blob, data in conn.cursor("SELECT hash, data FROM blob_data ORDER BY hash, pos"):
            blob = bytes(blob)
            if blob != current:
                _check_blob(current, hasher)
                hasher, current = new_hasher(), blob
                report.blobs += 1
            hasher.update(data)
            report.blob_bytes += len(data)
        _check_blob(current, hasher)


def _check_blob(blob: bytes | None, hasher: Any) -> None:
    if blob is not None and hasher.digest() != blob:
        raise MigrateError(f"blob {blob.hex()} does not hash to its id in the target")
