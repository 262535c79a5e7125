"""SQLite: handles and prekeys (who exists, and the keys to start a session with them)."""

from __future__ import annotations

from collections.abc import Sequence

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import OneTimePrekey, SignedPrekey

from ..records import BundleRecord, HandleRecord
from ..writer import write
from .base import SQLiteBase, Tx, chunks, marks

__all__ = ["Identities", "check_handle", "bind_handle"]


class Identities(SQLiteBase):
    async def handle_by_name(self, handle: str) -> HandleRecord | None:
        rows = await self._read("SELECT handle, user, sig FROM handles WHERE handle = ?", (handle,))
        return HandleRecord(*rows[0]) if rows else None

    async def handle_by_user(self, user: bytes) -> HandleRecord | None:
        rows = await self._read("SELECT handle, user, sig FROM handles WHERE user = ?", (user,))
        return HandleRecord(*rows[0]) if rows else None

    async def otk_count(self, user: bytes) -> int:
        rows = await self._read("SELECT count(*) FROM one_time_prekeys WHERE user = ?", (user,))
        return int(rows[0][0])

    async def user_exists(self, user: bytes) -> bool:
        if user in self._known:
            return True
        rows = await self._read(
            "SELECT EXISTS (SELECT 1 FROM handles WHERE user = ?)"
            " OR EXISTS (SELECT 1 FROM signed_prekeys WHERE user = ?)",
            (user, user),
        )
        if rows[0][0]:
            self._known.add(user)
            return True
        return False

    @write
    def register(self, tx: Tx, user: bytes, handle: str, sig: bytes) -> HandleRecord:
        held = check_handle(tx, user, handle)
        if held is not None:
            return held
        self._known.add(user)
        return bind_handle(tx, user, handle, sig, self._clock())

    @write
    def publish_prekeys(
        self, tx: Tx, user: bytes, spk: SignedPrekey | None, otks: Sequence[OneTimePrekey]
    ) -> int:
        if spk is not None:
            tx.run_sql(
                "INSERT OR REPLACE INTO signed_prekeys (user, key_id, pub, sig, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (user, spk.key_id, spk.pub, spk.sig, self._clock()),
            )
            self._known.add(user)
        count = _count_otks(tx, user)
        if otks and count < self.otk_max:
            fresh: dict[int, bytes] = {}
            for otk in otks:
                fresh.setdefault(otk.key_id, otk.pub)  # first copy of a key_id wins
            for chunk in chunks(list(fresh), 900):
                for (key_id,) in tx.all(
                    f"SELECT key_id FROM one_time_prekeys WHERE user = ? AND key_id IN"
                    f" ({marks(len(chunk))})", [user, *chunk]):
                    del fresh[key_id]
            rows = [(user, k, p) for k, p in fresh.items()][: self.otk_max - count]
            tx.db.executemany(
                "INSERT INTO one_time_prekeys (user, key_id, pub) VALUES (?, ?, ?)", rows)
            count += len(rows)
        return count

    @write
    def take_bundle(self, tx: Tx, user: bytes, with_otk: bool = True) -> BundleRecord | None:
        row = tx.one("SELECT key_id, pub, sig FROM signed_prekeys WHERE user = ?", (user,))
        if row is None:
            return None
        spk = SignedPrekey(*row)
        if not with_otk:  # past the target's otk_rate: the bundle comes without one
            return BundleRecord(spk, None, _count_otks(tx, user))
        row = tx.one("SELECT key_id, pub FROM one_time_prekeys WHERE user = ?"
                     " ORDER BY key_id LIMIT 1", (user,))
        otk = OneTimePrekey(*row) if row else None
        if otk is not None:
            tx.run_sql("DELETE FROM one_time_prekeys WHERE user = ? AND key_id = ?",
                       (user, otk.key_id))
        return BundleRecord(spk, otk, _count_otks(tx, user))


def _count_otks(tx: Tx, user: bytes) -> int:
    return int(tx.one("SELECT count(*) FROM one_time_prekeys WHERE user = ?", (user,))[0])


def check_handle(tx: Tx, user: bytes, handle: str) -> HandleRecord | None:
    """The record if ``user`` holds ``handle`` already; None if both are free;
    handle_taken / forbidden (the identity holds another one)."""
    rows = tx.all("SELECT handle, user, sig FROM handles WHERE handle = ? OR user = ?",
                  (handle, user))
    by_name = next((HandleRecord(*r) for r in rows if r[0] == handle), None)
    by_user = next((HandleRecord(*r) for r in rows if r[1] == user), None)
    if by_name is not None and by_name.user != user:
        raise ProtocolError(ErrorCode.HANDLE_TAKEN, f"@{handle} is taken")
    if by_name is not None:
        return by_name  # the owner registering again: nothing changes
    if by_user is not None:
        raise ProtocolError(ErrorCode.FORBIDDEN, f"this identity already holds @{by_user.handle}")
    return None


def bind_handle(tx: Tx, user: bytes, handle: str, sig: bytes, at: int) -> HandleRecord:
    tx.run_sql("INSERT INTO handles (handle, user, sig, at) VALUES (?, ?, ?, ?)",
               (handle, user, sig, at))
    return HandleRecord(handle, user, sig)
