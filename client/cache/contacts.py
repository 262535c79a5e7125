"""Contacts: identity keys pinned on first contact, their handles and flags, and pending
identity key changes (a key that claims a pinned handle waits for the user's yes)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from .repo import Repo

__all__ = ["Contacts", "ContactRow", "KEY_CHANGED", "KEY_CHANGED_VERIFIED", "contact_row"]

KEY_CHANGED, KEY_CHANGED_VERIFIED = 1, 2  # contacts.key_change


@dataclass(frozen=True, slots=True)
class ContactRow:
    user: bytes
    handle: str | None
    added: bool
    blocked: bool
    verified: bool
    # A pending identity key change: the relay says this key now holds the handle of
    # previous_key (``claimed``), which keeps it until the user accepts this key.
    # 0 no, KEY_CHANGED, or KEY_CHANGED_VERIFIED (the old key was verified).
    key_change: int = 0
    previous_key: bytes | None = None
    claimed: str | None = None  # the previous key's handle, while the change is pending

    @property
    def needs_acceptance(self) -> bool:
        """Nothing is sent to this key until the user accepts it (any pending change)."""
        return self.key_change != 0


_CONTACT_COLS = ("user, handle, added, blocked, verified, key_change, previous_key, "
                 "(SELECT o.handle FROM contacts o WHERE o.user=contacts.previous_key "
                 "AND contacts.key_change != 0)")


def _contact(row: Iterable) -> ContactRow:
    r = tuple(row)
    return ContactRow(r[0], r[1], bool(r[2]), bool(r[3]), bool(r[4]), r[5], r[6], r[7])


def contact_row(conn: sqlite3.Connection, user: bytes) -> ContactRow | None:
    row = conn.execute(
        f"SELECT {_CONTACT_COLS} FROM contacts WHERE user=?", (user,)
    ).fetchone()
    return _contact(row) if row else None


class Contacts(Repo):
    async def by_handle(self, handle: str) -> ContactRow | None:
        async with self._db.execute(
            f"SELECT {_CONTACT_COLS} FROM contacts WHERE handle=?",
            (handle,),
        ) as cur:
            row = await cur.fetchone()
        return _contact(row) if row else None

    async def get(self, user: bytes) -> ContactRow | None:
        return await self._db.run(contact_row, self._db.conn, user)

    async def remember(self, user: bytes, handle: str | None, now: int,
                       *, added: bool = False) -> None:
        await self._db.execute(
            "INSERT INTO contacts (user, handle, added, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(user) DO UPDATE SET handle=COALESCE(excluded.handle, handle), "
            "added=MAX(added, excluded.added)",
            (user, handle, int(added), now),
        )

    async def set_flag(self, user: bytes, flag: str, value: bool) -> None:
        assert flag in ("added", "blocked", "verified")
        await self._db.execute(f"UPDATE contacts SET {flag}=? WHERE user=?", (int(value), user))

    async def record_key_change(self, handle: str, user: bytes, now: int
                                ) -> ContactRow | None:
        """The relay says ``handle`` belongs to identity ``user`` (a binding ``user``
        signed, which anyone can make). A handle not pinned here is pinned to ``user``.
        One pinned to another key STAYS with that key: ``user`` becomes a pending key
        change of it (no handle; see accept_key). Returns the pinned contact if so."""
        old = await self.by_handle(handle)
        if old is None or old.user == user:
            await self.remember(user, handle, now)
            return None
        change = KEY_CHANGED_VERIFIED if old.verified else KEY_CHANGED
        await self._db.execute(
            "INSERT INTO contacts (user, handle, added, created_at, previous_key, key_change) "
            "VALUES (?, NULL, 0, ?, ?, ?) ON CONFLICT(user) DO UPDATE SET "
            "previous_key=excluded.previous_key, key_change=excluded.key_change "
            "WHERE handle IS NULL",
            (user, now, old.user, change))
        return old

    async def pending_key(self, user: bytes) -> ContactRow | None:
        """The newest pending key change of the contact ``user`` (that holds a handle)."""
        async with self._db.execute(
            f"SELECT {_CONTACT_COLS} FROM contacts WHERE previous_key=? AND key_change != 0 "
            "AND handle IS NULL ORDER BY created_at DESC, rowid DESC LIMIT 1", (user,),
        ) as cur:
            row = await cur.fetchone()
        return _contact(row) if row else None

    async def accept_key(self, user: bytes) -> None:
        """The user accepted ``user`` as the new key of the handle it claims: the handle
        moves to it (unverified, its added flag kept) and the change is no longer pending."""
        new = await self.get(user)
        if new is None or not new.key_change:
            return
        old = await self.get(new.previous_key) if new.previous_key else None
        if old is not None and old.handle is not None:
            await self._db.execute("UPDATE contacts SET handle=NULL WHERE user=?", (old.user,))
            await self._db.execute(
                "UPDATE contacts SET handle=?, added=MAX(added, ?), verified=0 WHERE user=?",
                (old.handle, int(old.added), user))
        await self._db.execute("UPDATE contacts SET key_change=0 WHERE user=?", (user,))

    async def reject_key(self, user: bytes) -> None:
        """The user refused a pending key change: ``user`` no longer claims the handle."""
        await self._db.execute(
            "UPDATE contacts SET key_change=0, previous_key=NULL WHERE user=? AND key_change != 0",
            (user,))

    async def all(self) -> list[ContactRow]:
        """Everyone added, blocked, verified, with a pending key, or written with."""
        async with self._db.execute(
            f"SELECT {_CONTACT_COLS} FROM contacts "
            "WHERE added OR blocked OR verified OR key_change "
            "OR user IN (SELECT DISTINCT peer FROM messages) "
            "ORDER BY handle"
        ) as cur:
            return [_contact(r) for r in await cur.fetchall()]
