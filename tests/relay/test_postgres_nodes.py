"""Two ``tenchat-relay serve`` processes on one PostgreSQL database, joined by NATS: a
message sent through node A reaches its recipient on node B (pushed over the bus while
online, read from the shared store after reconnecting), a blob uploaded through A
downloads through B, and a device-linking blob left through A is taken through B.
Real processes, a real PostgreSQL and a real NATS server."""

from __future__ import annotations

import os
import uuid
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
    Error,
    LinkBlob,
    LinkPut,
    LinkTake,
    Ok,
    Send,
    Stored,
    Subscribe,
    Synced,
)
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, async_test, msg_id, new_key

pytestmark = pytest.mark.slow


NAME = f"pg-relay-{uuid.uuid4().hex[:8]}"  # tests running at once share the NATS server

@pytest.fixture
def database(postgres_service: str) -> Iterator[str]:
    """A fresh database of the test server (dropped afterwards)."""
    with scratch_database(postgres_service) as url:
        yield url


@pytest.fixture
def nodes(tmp_path: Path, database: str, nats_service: str) -> Iterator[list[RelayProcess]]:
    # one relay (one name, so one bus subject of its own) on two nodes
    relays = [RelayProcess(tmp_path / f"node{i}", name=NAME,
                           args=["--storage", database, "--bus", nats_service])
              for i in range(2)]
    try:
        for relay in relays:  # one after the other: the first migrates the schema
            relay.start()
        yield relays
    finally:
        for relay in relays:
            if relay.running:
                relay.terminate()


async def login(relay: RelayProcess) -> RelayClient:
    client = await RelayClient.login(relay.url, new_key(), NAME)
    await client.publish()
    return client


@async_test
async def test_a_message_sent_through_one_node_reaches_the_other(
        nodes: list[RelayProcess]) -> None:
    a, b = nodes
    alice, bob = await login(a), await login(b)
    await bob.call(Subscribe)
    await bob.next_push(Synced)
    stored = await alice.call(Send, to=bob.user, msg=msg_id(), body=b"pushed")
    assert isinstance(stored, Stored), stored
    pushed = await bob.next_push(Deliver)
    assert (pushed.seq, pushed.body, pushed.sender) == (stored.seq, b"pushed", alice.user)
    # Offline on B meanwhile: the message is in the shared store when it comes back.
    key = bob.key
    assert key is not None
    await bob.close()
    later = await alice.call(Send, to=bob.user, msg=msg_id(), body=b"stored")
    assert isinstance(later, Stored), later
    bob = await RelayClient.login(b.url, key, NAME)
    await bob.call(Subscribe)
    got = await bob.next_push(Deliver)
    assert got.seq in (stored.seq, later.seq)  # not acked: the first may come again
    while got.seq != later.seq:
        got = await bob.next_push(Deliver)
    assert got.body == b"stored"
    await alice.close()
    await bob.close()


@async_test
async def test_a_blob_uploaded_through_one_node_downloads_through_the_other(
        nodes: list[RelayProcess]) -> None:
    a, b = nodes
    alice, bob = await login(a), await login(b)
    data = os.urandom(300_000)
    blob = blob_hash(data)
    status = await alice.call(BlobBegin, hash=blob, size=len(data))
    assert isinstance(status, BlobStatus) and status.offset == 0, status
    for offset in range(0, len(data), 100_000):
        status = await alice.call(BlobChunk, hash=blob, offset=offset,
                                  data=data[offset : offset + 100_000])
        assert isinstance(status, BlobStatus), status
    assert status.offset == len(data)
    got = b""
    while len(got) < len(data):
        part = await bob.call(BlobGet, hash=blob, offset=len(got), length=128_000)
        assert isinstance(part, BlobData) and part.size == len(data), part
        got += part.data
    assert got == data
    await alice.close()
    await bob.close()


@async_test
async def test_a_link_blob_left_through_one_node_is_taken_through_the_other(
        nodes: list[RelayProcess]) -> None:
    a, b = nodes
    old, new = await login(a), await login(b)  # the two devices reach different nodes
    slot = os.urandom(32)
    missing = await new.call(LinkTake, slot=slot)
    assert isinstance(missing, Error) and missing.error == "not_found", missing
    assert isinstance(await old.call(LinkPut, slot=slot, blob=b"sealed offer"), Ok)
    taken = await new.call(LinkTake, slot=slot)
    assert isinstance(taken, LinkBlob) and taken.blob == b"sealed offer", taken
    again = await old.call(LinkTake, slot=slot)  # single use, on every node
    assert isinstance(again, Error) and again.error == "not_found", again
    await old.close()
    await new.close()
