"""The SQLite writer's memory of the messages it queued lately (SQLiteBase._recent): an
ack of one of them reads nothing, an ack of any other still finds its row, and a
message deleted by a sweep is forgotten, so queue sizes stay right."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.relay.storage import SQLiteStore
from tests.relay.storage.conftest import T0, Clock
from tests.support.wsclient import async_test

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32
_ROW_READ = "SELECT seq, recipient, length(body), sender FROM messages"


def traced(store: SQLiteStore) -> list[str]:
    statements: list[str] = []
    store.writer_connection.set_trace_callback(statements.append)
    return statements


@async_test
async def test_an_ack_of_a_recent_message_reads_nothing_and_any_other_reads_its_row(
        tmp_path: Path) -> None:
    path = tmp_path / "relay.sqlite3"
    async with SQLiteStore(path, sync="normal") as store:
        seqs = [(await store.enqueue(A, B, os.urandom(16), b"x" * i)).seq for i in range(4)]
        statements = traced(store)
        await store.ack(A, seqs[:2])
        assert not [s for s in statements if s.startswith(_ROW_READ)]
        with pytest.raises(ProtocolError) as refused:  # C may not ack A's queue
            await store.ack(C, seqs[2:3])
        assert refused.value.code == ErrorCode.FORBIDDEN
    async with SQLiteStore(path, sync="normal") as store:  # a new writer: nothing recent
        statements = traced(store)
        with pytest.raises(ProtocolError):
            await store.ack(C, seqs[2:3])
        await store.ack(A, seqs[2:])
        assert [s for s in statements if s.startswith(_ROW_READ)]
        assert await store.pending(A, 0, 10) == []


@async_test
async def test_a_message_a_sweep_deleted_is_forgotten_and_queue_sizes_stay_right(
        tmp_path: Path) -> None:
    clock = Clock()
    async with SQLiteStore(tmp_path / "relay.sqlite3", sync="normal", queue_max=2,
                           queue_share=100, clock=clock) as store:
        expiring = [(await store.enqueue(A, B, os.urandom(16), b"x", T0 + 1000)).seq
                    for _ in range(2)]
        clock.now = T0 + 2000
        assert await store.sweep(clock.now, 100) == 2  # both expired and deleted
        await store.enqueue(A, B, os.urandom(16), b"y")  # counted again: 1 in the queue
        await store.ack(A, expiring)  # acks of rows that are gone: nothing to count down
        await store.enqueue(A, B, os.urandom(16), b"z")  # 2: full
        with pytest.raises(ProtocolError) as full:
            await store.enqueue(A, B, os.urandom(16), b"one too many")
        assert full.value.code == ErrorCode.QUEUE_FULL
        assert len(await store.pending(A, 0, 10)) == 2
