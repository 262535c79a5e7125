"""PostgreSQL: handles and prekeys (who exists, and the keys to start a session with them)."""

from __future__ import annotations

from collections.abc import Sequence

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import OneTimePrekey, SignedPrekey

from ..records import BundleRecord, HandleRecord
from .base import PostgresBase, Tx, write

__all__ = ["Identities", "check_handle", "bind_handle"]


def _handle(row: tuple[str, bytes, bytes]) -> HandleRecord:
    return HandleRecord(row[0], bytes(row[1]), bytes(row[2]))


class Identities(PostgresBase):
    async def handle_by_name(self, handle: str) -> HandleRecord | None:
        rows = await self._read("SELECT handle, user_id, sig FROM handles WHERE handle = $1",
                                handle)
        return _handle(rows[0]) if rows else None

    async def handle_by_user(self, user: bytes) -> HandleRecord | None:
        rows = await self._read("SELECT handle, user_id, sig FROM handles WHERE user_id = $1",
                                user)
        return _handle(rows[0]) if rows else None

    async def otk_count(self, user: bytes) -> int:
        return int(await self._read_value(
            "SELECT count(*) FROM one_time_prekeys WHERE user_id = $1", user))

    async def user_exists(self, user: bytes) -> bool:
        if user in self._known:
            return True
        if await self._read_value(
                "SELECT EXISTS (SELECT 1 FROM handles WHERE user_id = $1)"
                " OR EXISTS (SELECT 1 FROM signed_prekeys WHERE user_id = $1)", user):
            self._known.add(user)
            return True
        return False

    @write
    async def register(self, tx: Tx, user: bytes, handle: str, sig: bytes) -> HandleRecord:
        held = await check_handle(tx, user, handle)
        if held is not None:
            return held
        self._known.add(user)
        return await bind_handle(tx, user, handle, sig, self._clock())

    @write
    async def publish_prekeys(
        self, tx: Tx, user: bytes, spk: SignedPrekey | None, otks: Sequence[OneTimePrekey]
    ) -> int:
        if spk is not None:
            await tx.run_sql(
                "INSERT INTO signed_prekeys (user_id, key_id, pub, sig, at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET"
                " key_id = excluded.key_id, pub = excluded.pub, sig = excluded.sig,"
                " at = excluded.at", user, spk.key_id, spk.pub, spk.sig, self._clock())
            self._known.add(user)
        count = await _count_otks(tx, user)
        if otks and count < self.otk_max:
            fresh: dict[int, bytes] = {}
            for otk in otks:
                fresh.setdefault(otk.key_id, otk.pub)  # first copy of a key_id wins
            for (key_id,) in await tx.all(
                    "SELECT key_id FROM one_time_prekeys WHERE user_id = $1"
                    " AND key_id = ANY($2::bigint[])", user, list(fresh)):
                del fresh[key_id]
            rows = [(user, k, p) for k, p in fresh.items()][: self.otk_max - count]
            await tx.many("INSERT INTO one_time_prekeys (user_id, key_id, pub)"
                          " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", rows)
            count = await _count_otks(tx, user)
        return count

    @write
    async def take_bundle(self, tx: Tx, user: bytes,
                          with_otk: bool = True) -> BundleRecord | None:
        row = await tx.one("SELECT key_id, pub, sig FROM signed_prekeys WHERE user_id = $1",
                           user)
        if row is None:
            return None
        spk = SignedPrekey(row[0], bytes(row[1]), bytes(row[2]))
        otk = None
        if with_otk:  # (past the target's otk_rate the bundle comes without one)
            # SKIP LOCKED: two nodes fetching bundles at once never hand out the same key.
            row = await tx.one(
                "DELETE FROM one_time_prekeys WHERE (user_id, key_id) = (SELECT user_id,"
                " key_id FROM one_time_prekeys WHERE user_id = $1 ORDER BY key_id LIMIT 1"
                " FOR UPDATE SKIP LOCKED) RETURNING key_id, pub", user)
            otk = OneTimePrekey(row[0], bytes(row[1])) if row else None
        return BundleRecord(spk, otk, await _count_otks(tx, user))


async def _count_otks(tx: Tx, user: bytes) -> int:
    return int(await tx.value("SELECT count(*) FROM one_time_prekeys WHERE user_id = $1", user))


async def check_handle(tx: Tx, user: bytes, handle: str) -> HandleRecord | None:
    """The record if ``user`` holds ``handle`` already; None if both are free;
    handle_taken / forbidden (the identity holds another one)."""
    rows = [_handle(r) for r in await tx.all(
        "SELECT handle, user_id, sig FROM handles WHERE handle = $1 OR user_id = $2",
        handle, user)]
    by_name = next((r for r in rows if r.handle == handle), None)
    by_user = next((r for r in rows if r.user == user), None)
    if by_name is not None and by_name.user != user:
        raise ProtocolError(ErrorCode.HANDLE_TAKEN, f"@{handle} is taken")
    if by_name is not None:
        return by_name  # the owner registering again: nothing changes
    if by_user is not None:
        raise ProtocolError(ErrorCode.FORBIDDEN, f"this identity already holds @{by_user.handle}")
    return None


async def bind_handle(tx: Tx, user: bytes, handle: str, sig: bytes, at: int) -> HandleRecord:
    """Bind a free handle. Another node may have bound it (or this identity) since the
    check: the unique keys refuse that (the batch is retried, the check then answers)."""
    await tx.run_sql("INSERT INTO handles (handle, user_id, sig, at) VALUES ($1, $2, $3, $4)",
                     handle, user, sig, at)
    return HandleRecord(handle, user, sig)
