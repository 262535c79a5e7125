"""`tenchat-relay backup` and `restore` with PostgreSQL storage: a dump taken while a
node serves, restored into a new database, serves the same queues and blobs; a database
that is not empty is refused with one line. Real processes, a real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench._postgres import scratch_database
from tenchat.common.crypto.media import blob_hash
from tenchat.common.frames import (
    BlobBegin,
    BlobChunk,
    BlobData,
    BlobGet,
    BlobStatus,
    Deliver,
    Send,
    Stored,
    Subscribe,
)
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, async_test, msg_id, new_key

pytestmark = pytest.mark.slow

NAME = "pg-backup"


@pytest.fixture
def databases(postgres_service: str) -> Iterator[tuple[str, str]]:
    with scratch_database(postgres_service) as source, scratch_database(postgres_service) as target:
        yield source, target


def relay_cli(*args: str, storage: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENCHAT_RELAY_")}
    env["TENCHAT_RELAY_STORAGE"] = storage
    return subprocess.run([sys.executable, "-m", "tenchat.relay", *args, "--data", str(data)],
                          env=env, capture_output=True, text=True, timeout=120)


@async_test
async def test_a_dump_taken_while_serving_restores_into_a_new_database(
        tmp_path: Path, databases: tuple[str, str]) -> None:
    source, target = databases
    alice_key, bob_key = new_key(), new_key()
    data = os.urandom(200_000)
    blob = blob_hash(data)
    with RelayProcess(tmp_path / "node", name=NAME, args=["--storage", source]) as relay:
        alice = await RelayClient.login(relay.url, alice_key, NAME)
        bob = await RelayClient.login(relay.url, bob_key, NAME)
        await bob.publish()
        sent = [await alice.call(Send, to=bob.user, msg=msg_id(), body=b"%d" % i)
                for i in range(3)]
        assert all(isinstance(s, Stored) for s in sent), sent
        status = await alice.call(BlobBegin, hash=blob, size=len(data))
        assert isinstance(status, BlobStatus), status
        status = await alice.call(BlobChunk, hash=blob, offset=0, data=data)
        assert isinstance(status, BlobStatus) and status.offset == len(data), status
        done = relay_cli("backup", str(tmp_path / "dump"), storage=source, data=tmp_path / "d")
        assert done.returncode == 0, done.stderr
        assert "3 queued messages, 1 blobs (200000 bytes)" in done.stdout, done.stdout
        await alice.close()
        await bob.close()

    done = relay_cli("restore", str(tmp_path / "dump"), storage=target, data=tmp_path / "d")
    assert done.returncode == 0, done.stderr
    assert "3 queued messages, 1 blobs" in done.stdout, done.stdout
    again = relay_cli("restore", str(tmp_path / "dump"), storage=target, data=tmp_path / "d")
    assert again.returncode != 0 and again.stdout == ""
    assert again.stderr.strip().count("\n") == 0 and "not empty" in again.stderr, again.stderr

    with RelayProcess(tmp_path / "restored", name=NAME, args=["--storage", target]) as relay:
        bob = await RelayClient.login(relay.url, bob_key, NAME)
        await bob.call(Subscribe)
        got = [await bob.next_push(Deliver) for _ in sent]
        assert [(d.seq, d.body) for d in got] == [
            (s.seq, b"%d" % i) for i, s in enumerate(sent) if isinstance(s, Stored)]
        part = await bob.call(BlobGet, hash=blob, offset=0, length=len(data))
        assert isinstance(part, BlobData) and part.data == data, part
        await bob.close()
