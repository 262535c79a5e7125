"""Sealed sender on the relay (docs/protocol.md §5.10), in this process: a sealed
message reaches its recipient with no sender, only with the recipient's access key (or
to one who takes sealed messages from anyone), deduplicated by (recipient, msg), rate
limited per recipient; nothing the relay stores names the sender."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import msgspec
import pytest
import pytest_asyncio

from tenchat.common import frames
from tenchat.common.crypto.sealed import (
    SEALED_SENDER,
    access_key,
    access_verifier,
    sealed_queue_id,
)
from tenchat.common.frames import (
    Deliver,
    Error,
    Fetch,
    Hello,
    Messages,
    Ok,
    SealedAccess,
    SealedSend,
    Stored,
    Subscribe,
    Welcome,
)
from tests.support.inproc import InProcRelay, Peer, StartRelay

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def inproc(relay_with: StartRelay) -> InProcRelay:
    return await relay_with()


async def anonymous(relay: InProcRelay) -> Peer:
    """A connection that said hello and never authenticated."""
    peer = relay.connect()
    assert isinstance(await peer.call(Hello, versions=[frames.PROTOCOL_VERSION]), Welcome)
    return peer


async def refused(peer: Peer, frame_type: type[msgspec.Struct], **fields: Any) -> str:
    reply = await peer.call(frame_type, **fields)
    assert isinstance(reply, Error), reply
    return reply.error


async def with_access(peer: Peer, profile_key: bytes) -> bytes:
    access = access_key(profile_key)
    assert isinstance(await peer.call(SealedAccess, verifier=access_verifier(access)), Ok)
    return access


async def test_a_sealed_message_arrives_without_a_sender(inproc: InProcRelay) -> None:
    bob = await inproc.login()
    access = await with_access(bob, os.urandom(32))
    assert isinstance(await bob.call(Subscribe), Ok)
    anon = await anonymous(inproc)
    mid = os.urandom(16)
    stored = await anon.call(SealedSend, to=bob.user, msg=mid, body=b"sealed!", access=access)
    assert isinstance(stored, Stored) and stored.msg == mid
    push = await bob.wait_for(lambda f: isinstance(f, Deliver))
    assert (push.seq, push.sender, push.body) == (stored.seq, SEALED_SENDER, b"sealed!")
    assert push.msg == sealed_queue_id(bob.user, mid)
    again = await anon.call(SealedSend, to=bob.user, msg=mid, body=b"sealed!", access=access)
    assert isinstance(again, Stored) and (again.seq, again.at) == (stored.seq, stored.at)
    page = await bob.call(Fetch, user=bob.user)
    assert isinstance(page, Messages) and [m.seq for m in page.items] == [stored.seq]


async def test_no_access_key_no_delivery(inproc: InProcRelay) -> None:
    bob, carol = await inproc.login(), await inproc.login()
    anon = await anonymous(inproc)
    # carol never said who may send her sealed messages: no one may
    assert await refused(anon, SealedSend, to=carol.user, msg=os.urandom(16), body=b"x",
                         access=os.urandom(16)) == "access_denied"
    access = await with_access(bob, os.urandom(32))
    for wrong in (b"", os.urandom(16), access_key(os.urandom(32))):
        assert await refused(anon, SealedSend, to=bob.user, msg=os.urandom(16), body=b"x",
                             access=wrong) == "access_denied"
    # a rotated key (after a block) shuts the old one out
    await with_access(bob, os.urandom(32))
    assert await refused(anon, SealedSend, to=bob.user, msg=os.urandom(16), body=b"x",
                         access=access) == "access_denied"
    assert await refused(anon, SealedSend, to=os.urandom(32), msg=os.urandom(16), body=b"x",
                         access=access) == "not_found"
    page = await bob.call(Fetch, user=bob.user)
    assert isinstance(page, Messages) and page.items == []


async def test_anyone_may_send_to_one_who_allows_it(inproc: InProcRelay) -> None:
    bob = await inproc.login()
    assert isinstance(await bob.call(SealedAccess, anyone=True), Ok)
    anon = await anonymous(inproc)
    assert isinstance(await anon.call(SealedSend, to=bob.user, msg=os.urandom(16),
                                      body=b"hi"), Stored)
    assert isinstance(await bob.call(SealedAccess, anyone=False), Ok)  # and back
    assert await refused(anon, SealedSend, to=bob.user, msg=os.urandom(16),
                         body=b"hi") == "access_denied"


async def test_sealed_send_needs_hello_and_well_formed_fields(inproc: InProcRelay) -> None:
    bob = await inproc.login()
    access = await with_access(bob, os.urandom(32))
    fresh = inproc.connect()
    assert await refused(fresh, SealedSend, to=bob.user, msg=os.urandom(16), body=b"x",
                         access=access) == "protocol"
    anon = await anonymous(inproc)
    assert await refused(anon, SealedSend, to=bob.user, msg=os.urandom(16), body=b"x",
                         access=access[:8]) == "malformed"
    assert await refused(anon, SealedAccess, anyone=True) == "unauthenticated"
    assert await refused(bob, SealedAccess, verifier=b"short") == "malformed"
    assert isinstance(await anon.call(SealedSend, to=bob.user, msg=os.urandom(16),
                                      body=b"x", access=access), Stored)  # still serving


async def test_sealed_messages_are_rate_limited_per_recipient(relay_with: StartRelay) -> None:
    relay = await relay_with(sealed_rate=2)
    bob, carol = await relay.login(), await relay.login()
    to_bob = await with_access(bob, os.urandom(32))
    to_carol = await with_access(carol, os.urandom(32))
    senders = [await anonymous(relay) for _ in range(3)]  # other connections: same bucket
    answers = [await s.call(SealedSend, to=bob.user, msg=os.urandom(16), body=b"x",
                            access=to_bob) for s in senders]
    assert [type(a) for a in answers[:2]] == [Stored, Stored]
    assert isinstance(answers[2], Error) and answers[2].error == "rate_limited"
    assert answers[2].retry_after > 0
    assert isinstance(await senders[2].call(SealedSend, to=carol.user, msg=os.urandom(16),
                                            body=b"x", access=to_carol), Stored)


async def test_the_relay_stores_no_sender_of_a_sealed_message(inproc: InProcRelay) -> None:
    alice, bob = await inproc.login(), await inproc.login()
    access = await with_access(bob, os.urandom(32))
    anon = await anonymous(inproc)
    for _ in range(3):
        assert isinstance(await anon.call(SealedSend, to=bob.user, msg=os.urandom(16),
                                          body=b"x", access=access), Stored)
    await inproc.stop()
    db = sqlite3.connect(inproc.config.data / "relay.sqlite3")
    try:
        rows = db.execute("SELECT sender FROM messages WHERE recipient = ?",
                          (bob.user,)).fetchall()
        assert [bytes(r[0]) for r in rows] == [SEALED_SENDER] * 3
        for table in ("messages", "sent", "contacts"):
            dump = b"".join(bytes(v) if isinstance(v, bytes) else str(v).encode()
                            for row in db.execute(f"SELECT * FROM {table}") for v in row)
            assert alice.user not in dump, table
    finally:
        db.close()
