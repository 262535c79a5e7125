"""Build signed group changes for tests, and follow a group's chain like a client would.

    g = TestGroup()
    stored = await g.change(alice, "create", name="g", members=[bob.user])
    record = g.record(bob.key, "add", members=[carol.user])   # build only, not applied
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from tenchat.common.frames import GroupChangeReq, GroupStored, Ok, Subscribe, Synced
from tenchat.common.groups import GENESIS, GroupChange, record_hash, sign_change

from .wsclient import RelayClient, user_of

__all__ = ["TestGroup", "drain_all"]


class TestGroup:
    """A group id and the head of its chain as the tests have built it."""

    __test__ = False  # not a pytest class

    def __init__(self, group: bytes | None = None) -> None:
        self.id = group or os.urandom(16)
        self.version = 0
        self.head = GENESIS
        self.records: list[bytes] = []

    def record(
        self, key: Any, op: str, *, version: int | None = None, prev: bytes | None = None,
        **fields: Any,
    ) -> bytes:
        """A record signed by ``key`` following the current head (unless told otherwise)."""
        change = GroupChange(
            group=self.id,
            version=self.version + 1 if version is None else version,
            prev=self.head if prev is None else prev,
            actor=user_of(key),
            at=0,
            op=op,
            **fields,
        )
        return sign_change(change, lambda m: key.sign(m).signature)

    def applied(self, record: bytes) -> None:
        self.version += 1
        self.head = record_hash(record)
        self.records.append(record)

    async def change(self, client: RelayClient, op: str, **fields: Any) -> GroupStored:
        """Make ``client`` (its own key) send a change; assert it is stored; follow it."""
        record = self.record(client.key, op, **fields)
        stored = await client.call(GroupChangeReq, record=record)
        assert isinstance(stored, GroupStored), stored
        assert stored.group == self.id
        self.applied(record)
        return stored


async def drain_all(c: RelayClient) -> tuple[list[msgspec.Struct], int]:
    """Subscribe; every push before Synced (msg and gmsg frames), and Synced's seq."""
    ok = await c.call(Subscribe)
    assert isinstance(ok, Ok), ok
    items: list[msgspec.Struct] = []
    while True:
        push = await c.next_push()
        if isinstance(push, Synced):
            return items, push.seq
        items.append(push)
