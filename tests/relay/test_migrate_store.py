"""``tenchat-relay migrate-store --to postgresql://…``: a SQLite relay's data (queues,
dedupe keys, groups and cursors, handles, blobs with their files) moved to PostgreSQL
and verified; the PostgreSQL store then answers as the SQLite one did, and hands out no
seq, gseq or id twice. Real SQLite, real PostgreSQL, the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from bench._postgres import scratch_database
from tenchat.common.crypto.media import blob_hash
from tenchat.common.errors import ProtocolError
from tenchat.common.groups import decode_signed
from tenchat.relay.blobs import BlobFiles
from tenchat.relay.storage import SQLiteStore
from tenchat.relay.storage.postgres import PostgresStore
from tests.support.groups import TestGroup
from tests.support.wsclient import async_test, user_of

pytestmark = pytest.mark.slow


@pytest.fixture
def database(postgres_service: str) -> Iterator[str]:
    with scratch_database(postgres_service) as url:
        yield url


def migrate_store(data: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenchat.relay", "migrate-store", "--to", url,
         "--data", str(data)], capture_output=True, text=True, timeout=120)


@async_test
async def test_a_sqlite_relay_moves_to_postgresql_unchanged(tmp_path: Path,
                                                             database: str) -> None:
    data = tmp_path / "data"
    alice_key, bob_key = SigningKey.generate(), SigningKey.generate()
    alice, bob = user_of(alice_key), user_of(bob_key)
    payload = os.urandom(1_500_000)  # two blob_data chunks
    blob = blob_hash(payload)
    g = TestGroup()
    async with SQLiteStore(data / "relay.sqlite3", sync="normal") as store:
        await store.register(alice, "alice", b"sig")
        sent = [await store.enqueue(bob, alice, os.urandom(16), b"m%d" % i) for i in range(5)]
        await store.ack(bob, [sent[0].seq])
        record = g.record(alice_key, "create", name="g", members=[bob])
        await store.group_change(decode_signed(record)[0], record)
        g.applied(record)
        post = await store.group_post(g.id, bob, os.urandom(16), b"hello", 0)
        await store.group_ack(bob, g.id, post.seq)
        files = BlobFiles(data / "blobs")
        files.open()
        await store.blob_begin(alice, blob, len(payload), 10**9)
        await files.append(alice, blob, payload)
        assert await files.publish(alice, blob)
        await store.blob_commit(alice, blob, len(payload))
        pending = await store.pending(bob, 0, 10)
        summaries = await store.group_summaries(bob)

    done = migrate_store(data, database)
    assert done.returncode == 0, done.stderr
    assert "messages" in done.stdout and "count and checksum verified" in done.stdout
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("moved ") and "1 blobs (1500000 bytes" in summary, summary

    async with PostgresStore(database, queue_max=6) as moved:
        assert await moved.pending(bob, 0, 10) == pending
        assert await moved.group_summaries(bob) == summaries
        assert (await moved.handle_by_name("alice")) is not None
        assert await moved.blob_size(blob) == len(payload)
        assert await moved.blob_bytes().read(blob, 0, len(payload)) == payload
        # a retry of a moved message gets its original answer; new seqs come after
        assert await moved.enqueue(bob, alice, pending[0].msg, b"again") == sent[1]
        assert (await moved.enqueue(bob, alice, os.urandom(16), b"new")).seq > sent[-1].seq
        # the queue cap counts the moved messages: 4 moved and 1 new, room for one more
        await moved.enqueue(bob, alice, os.urandom(16), b"last")
        with pytest.raises(ProtocolError) as full:
            await moved.enqueue(bob, alice, os.urandom(16), b"over")
        assert full.value.code == "queue_full"
        assert (await moved.group_post(g.id, bob, os.urandom(16), b"x", 0)).seq > post.seq

    again = migrate_store(data, database)  # the target is no longer empty
    assert again.returncode == 1
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "not empty" in lines[0], again.stderr
