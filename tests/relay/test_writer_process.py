"""The SQLite writer in a process of its own (relay/storage/sqlite/process.py), the relay's
default: on real files and real processes. Writes are answered as in a thread, refusals
keep their code and message, the relay's reads learn what the child's writes tell its
state, batches in flight keep their order, batches waiting together share a transaction
but not a fault, a killed writer is replaced without reusing a seq, and neither Ctrl-C
nor a killed relay leaves a writer behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import Send, Stored
from tenchat.relay.storage import SQLiteStore
from tests.support.relay import RelayProcess
from tests.support.wsclient import async_test, logged_in, msg_id

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


def children(pid: int) -> list[int]:
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.05)


@async_test
async def test_writes_are_answered_refused_and_read_as_in_a_thread(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "relay.sqlite3", sync="normal", queue_max=3,
                        writer="process")
    async with store:
        pid = store.writer_pid
        assert pid is not None and pid != os.getpid() and alive(pid)
        ids = [os.urandom(16) for _ in range(3)]
        stored = await asyncio.gather(*(store.enqueue(A, B, m, b"x%d" % i)
                                        for i, m in enumerate(ids)))
        assert [s.seq for s in stored] == [1, 2, 3]
        assert await store.enqueue(A, B, ids[1], b"again") == stored[1]  # a retry
        with pytest.raises(ProtocolError) as refused:  # refused in the child
            await store.enqueue(A, B, os.urandom(16), b"one too many")
        assert refused.value.code == ErrorCode.QUEUE_FULL
        assert "3 messages" in refused.value.message
        with pytest.raises(ProtocolError) as forbidden:
            await store.ack(C, [1])
        assert forbidden.value.code == ErrorCode.FORBIDDEN
        # the reads (this process) see what the child committed
        assert [d.msg for d in await store.pending(A, 0, 10)] == ids
        # and learn whom the child's writes saw block someone
        assert not await store.is_blocked(C, A)
        await store.set_block(C, A, True)
        assert await store.is_blocked(C, A)
    wait_gone(pid)  # closed with the store


@async_test
async def test_batches_in_flight_keep_the_order_of_the_calls(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "relay.sqlite3", sync="normal",
                           writer="process") as store:
        assert store.pipeline == 3
        ids = [os.urandom(16) for _ in range(3000)]
        futures = []
        for i, m in enumerate(ids):  # more than one batch (batch_max 2000), both in flight
            futures.append(store.enqueue(A, B, m, b"%d" % i))
            if i % 100 == 0:
                await asyncio.sleep(0)
        seqs = [s.seq for s in await asyncio.gather(*futures)]
        assert seqs == list(range(1, 3001))
        page = await store.pending(A, 0, 1000)
        assert [d.msg for d in page] == ids[:1000]


@async_test
async def test_batches_waiting_together_share_a_transaction_but_not_a_fault(
        tmp_path: Path) -> None:
    # batches of 50: three in flight, and the child takes those waiting in one transaction
    async with SQLiteStore(tmp_path / "relay.sqlite3", sync="normal", batch_max=50,
                           writer="process") as store:
        ids = [os.urandom(16) for _ in range(1000)]
        bad = 777
        futures = [store.enqueue(A, B, m, [1, 2] if i == bad else b"%d" % i)  # type: ignore[arg-type]
                   for i, m in enumerate(ids)]
        answers = await asyncio.gather(*futures, return_exceptions=True)
        # the one that cannot be stored fails alone, whatever it shared a transaction with
        assert isinstance(answers[bad], Exception)
        assert not isinstance(answers[bad], ProtocolError)
        good = [a for i, a in enumerate(answers) if i != bad]
        assert all(not isinstance(a, BaseException) for a in good)
        assert len({a.seq for a in good}) == 999
        # in call order, but for the faulty one's batch, retried one by one after the
        # batches behind it committed (as with two batches in flight and no merging)
        retried = range(bad - bad % 50, bad - bad % 50 + 50)
        rest = [a.seq for i, a in enumerate(answers) if i not in retried]
        assert rest == sorted(rest)
        queued = await store.pending(A, 0, 2000)
        assert {d.msg for d in queued} == set(ids) - {ids[bad]} and len(queued) == 999


@async_test
async def test_a_killed_writer_is_replaced_and_no_seq_is_used_twice(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "relay.sqlite3", sync="normal",
                           writer="process") as store:
        first = await store.enqueue(A, B, os.urandom(16), b"before")
        old = store.writer_pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        wait_gone(old)
        # the batch in flight when a writer dies is answered unavailable; the next one
        # starts a new writer, which reads the counters from the file
        answers = []
        for _ in range(2):
            try:
                answers.append(await store.enqueue(A, B, os.urandom(16), b"after"))
            except ProtocolError as exc:
                assert exc.code == ErrorCode.UNAVAILABLE
        assert answers and answers[-1].seq > first.seq
        assert store.writer_pid not in (None, old)
        assert len(await store.pending(A, 0, 10)) == 1 + len(answers)


@async_test
async def test_a_clock_the_writer_cannot_be_given_is_refused_at_open(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "relay.sqlite3", writer="process", clock=lambda: 0)
    with pytest.raises(Exception, match="pickle"):
        await store.open()
    with pytest.raises(ValueError, match="writer"):
        SQLiteStore(tmp_path / "relay.sqlite3", writer="fork")


@pytest.mark.slow
@async_test
async def test_ctrl_c_stops_the_relay_after_its_writer_and_a_kill_leaves_none(
        tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "data")
    with relay:
        (writer,) = children(relay.pid)
        async with logged_in(relay.url) as (a, b):
            sent = [msg_id() for _ in range(20)]
            for m in sent:
                assert isinstance(await a.call(Send, to=b.user, msg=m, body=b"hi"), Stored)
        # Ctrl-C reaches the whole process group: the writer ignores it and the relay
        # stops it after the last commit.
        os.kill(writer, signal.SIGINT)
        time.sleep(0.2)
        assert alive(writer)
        assert relay._stop(signal.SIGINT, 20) == 0
        wait_gone(writer)
        assert "Traceback" not in relay.log_tail(100_000)

        relay.start()  # the same data: what was stored is still there
        (writer,) = children(relay.pid)
        async with logged_in(relay.url) as (a, b):
            reply = await a.call(Send, to=b.user, msg=msg_id(), body=b"again")
            assert isinstance(reply, Stored) and reply.seq == len(sent) + 1
        relay.kill()  # SIGKILL: the writer sees its socket close and ends
        wait_gone(writer)
