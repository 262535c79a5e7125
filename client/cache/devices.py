"""The device tables of the local cache (issue 16): accounts' verified device lists, which
account each known device belongs to, the outbox's per-device copies, and the warnings a
device-list change left for the user. Methods do not commit, like the rest of the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from .repo import Repo

__all__ = ["DEVICES_SCHEMA", "Devices", "Copy", "Alert"]

# The cache's migration 13 (client/cache/schema.py).
DEVICES_SCHEMA = """
    CREATE TABLE device_lists (         -- the newest verified list of each account
        account BLOB PRIMARY KEY,
        version INTEGER NOT NULL,
        record BLOB NOT NULL,
        checked_at INTEGER NOT NULL     -- when the relay last answered for it (ms)
    );
    CREATE TABLE device_index (         -- device key -> account, from the lists above
        device BLOB PRIMARY KEY,
        account BLOB NOT NULL
    );
    CREATE INDEX device_index_account ON device_index(account);
    CREATE TABLE outbox_copies (        -- outbox rows that are one device's copy
        msg_id BLOB PRIMARY KEY,        -- the relay-level id (outbox.msg_id)
        conv BLOB NOT NULL,             -- the conversation (an account)
        content_id BLOB NOT NULL        -- the message's own id (messages.id)
    );
    CREATE TABLE device_alerts (        -- device-list changes and refusals, for the user
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account BLOB NOT NULL,
        at INTEGER NOT NULL,
        text TEXT NOT NULL
    );
"""


@dataclass(frozen=True, slots=True)
class Copy:
    conv: bytes
    content_id: bytes


@dataclass(frozen=True, slots=True)
class Alert:
    account: bytes
    at: int
    text: str


class Devices(Repo):
    # --- lists ----------------------------------------------------------------------------

    async def held(self, account: bytes) -> tuple[bytes, int] | None:
        """(record, checked_at) of the account's newest verified list."""
        async with self._db.execute(
                "SELECT record, checked_at FROM device_lists WHERE account=?",
                (account,)) as cur:
            row = await cur.fetchone()
        return (bytes(row[0]), row[1]) if row else None

    async def put(self, account: bytes, version: int, record: bytes, devices: list[bytes],
                  now: int) -> None:
        """Store a verified list (the caller checked it succeeds the held one)."""
        await self._db.execute(
            "INSERT INTO device_lists (account, version, record, checked_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(account) DO UPDATE SET version=excluded.version,"
            " record=excluded.record, checked_at=excluded.checked_at",
            (account, version, record, now))
        await self._db.execute("DELETE FROM device_index WHERE account=?", (account,))
        await self._db.executemany(
            "INSERT OR REPLACE INTO device_index (device, account) VALUES (?, ?)",
            [(d, account) for d in devices])

    async def checked(self, account: bytes, now: int) -> None:
        await self._db.execute("UPDATE device_lists SET checked_at=? WHERE account=?",
                               (now, account))

    async def account_of(self, device: bytes) -> bytes | None:
        async with self._db.execute("SELECT account FROM device_index WHERE device=?",
                                    (device,)) as cur:
            row = await cur.fetchone()
        return bytes(row[0]) if row else None

    # --- outbox copies --------------------------------------------------------------------

    async def add_copy(self, msg_id: bytes, conv: bytes, content_id: bytes) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO outbox_copies (msg_id, conv, content_id) VALUES (?, ?, ?)",
            (msg_id, conv, content_id))

    async def copies(self, ids: list[bytes]) -> dict[bytes, Copy]:
        out: dict[bytes, Copy] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            async with self._db.execute(
                    "SELECT msg_id, conv, content_id FROM outbox_copies WHERE msg_id IN"
                    f" ({','.join('?' * len(chunk))})", chunk) as cur:
                for r in await cur.fetchall():
                    out[bytes(r[0])] = Copy(bytes(r[1]), bytes(r[2]))
        return out

    async def written(self, copies: list[Copy]) -> set[bytes]:
        """The content ids among ``copies`` that are messages this user wrote."""
        found: set[bytes] = set()
        for copy in copies:
            async with self._db.execute(
                    "SELECT 1 FROM messages WHERE peer=? AND id=? AND outgoing=1",
                    (copy.conv, copy.content_id)) as cur:
                if await cur.fetchone():
                    found.add(copy.content_id)
        return found

    async def drop_copies(self, ids: list[bytes]) -> None:
        await self._db.executemany("DELETE FROM outbox_copies WHERE msg_id=?",
                                   [(i,) for i in ids])

    # --- alerts ---------------------------------------------------------------------------

    async def alert(self, account: bytes, at: int, text: str) -> None:
        await self._db.execute("INSERT INTO device_alerts (account, at, text) VALUES (?, ?, ?)",
                               (account, at, text))

    async def alerts(self, account: bytes | None = None) -> list[Alert]:
        sql, args = "SELECT account, at, text FROM device_alerts", tuple[bytes, ...]()
        if account is not None:
            sql, args = sql + " WHERE account=?", (account,)
        async with self._db.execute(sql + " ORDER BY id", args) as cur:
            return [Alert(bytes(r[0]), r[1], r[2]) for r in await cur.fetchall()]
