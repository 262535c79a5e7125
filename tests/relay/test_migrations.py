"""The relay upgrades a database from every earlier schema version.

For each k in 0..len(MIGRATIONS)-1 the test builds a database by applying the first k
migrations exactly as the store does, puts one row in every table that exists then
(values made from each column's declared type, so tables added by later migrations are
covered without touching this test) plus a real queued message, upgrades it with the
store, checks every row survived, and starts a real relay on it that delivers the
message.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tenchat.common.frames import Fetch, Messages
from tenchat.relay.storage import MIGRATIONS, SQLiteStore
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, new_key, user_of

pytestmark = pytest.mark.slow


def build(path: Path, k: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    for target in range(1, k + 1):
        db.execute("BEGIN")
        for stmt in MIGRATIONS[target - 1].split(";"):
            if stmt.strip():
                db.execute(stmt)
        db.execute(f"PRAGMA user_version={target}")
        db.execute("COMMIT")
    db.close()


def sample(decl: str, n: int) -> Any:
    decl = decl.upper()
    if "INT" in decl:
        return 1000 + n
    if "BLOB" in decl:
        return os.urandom(32)
    return f"v{n}"


def tables(db: sqlite3.Connection) -> list[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                      " AND name NOT LIKE 'sqlite_%' ORDER BY name")
    return [name for (name,) in rows]


def fill(path: Path) -> dict[str, dict[str, Any]]:
    """One row per table; what was inserted, by table."""
    db = sqlite3.connect(path)
    rows: dict[str, dict[str, Any]] = {}
    for table in tables(db):
        cols = db.execute(f"PRAGMA table_info({table})").fetchall()
        values = {name: sample(decl, i) for i, (_, name, decl, *_rest) in enumerate(cols)}
        db.execute(
            f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
            list(values.values()),
        )
        rows[table] = values
    db.commit()
    db.close()
    return rows


def queue_message(path: Path, recipient: bytes) -> bytes:
    """A real message for ``recipient`` (and its signed-prekey row, so the relay knows
    them), in the columns version 1 has."""
    db = sqlite3.connect(path)
    mid = os.urandom(16)
    db.execute("INSERT INTO signed_prekeys (user, key_id, pub, sig, at) VALUES (?, 1, ?, ?, 1)",
               (recipient, os.urandom(32), os.urandom(64)))
    db.execute("INSERT INTO messages (recipient, sender, msg_id, at, body) VALUES (?, ?, ?, ?, ?)",
               (recipient, os.urandom(32), mid, 1_800_000_000_000, b"from an old schema"))
    db.commit()
    db.close()
    return mid


@pytest.mark.parametrize("k", range(len(MIGRATIONS)))
@pytest.mark.asyncio
async def test_upgrade_from_every_earlier_version(tmp_path: Path, k: int) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / "relay.sqlite3"
    build(path, k)
    inserted = fill(path)
    key = new_key()
    mid = queue_message(path, user_of(key)) if k >= 1 else None

    store = SQLiteStore(path)
    await store.open()
    await store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for table, values in inserted.items():
        where = " AND ".join(f"{col} = ?" for col in values)
        found = db.execute(f"SELECT count(*) FROM {table} WHERE {where}", list(values.values()))
        assert found.fetchone()[0] == 1, f"row in {table} (from version {k}) lost"
    db.close()

    async def read_back(url: str) -> None:
        async with await RelayClient.login(url, key) as c:
            page = await c.call(Fetch, user=c.user)
            assert isinstance(page, Messages)
            assert [m.msg for m in page.items] == [mid]

    with RelayProcess(data) as relay:
        if mid is not None:
            async with asyncio.timeout(30):
                await read_back(relay.url)
