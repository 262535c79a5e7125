"""A hostile relay can't make the client accept a forged handle binding or prekey bundle,
and garbage or forged deliveries are dropped without harming the client.

The hostile relay here is a few lines of websockets speaking our frames dishonestly.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from tenchat.client.cache import PENDING, Cache
from tenchat.client.keystore import Secrets
from tenchat.client.service import Client, PeerError
from tenchat.common import frames as f
from tenchat.common.crypto.errors import InvalidSignature
from tenchat.common.crypto.keys import IdentityKey, SignedPrekeySecret, make_signed_prekey
from tenchat.common.crypto.session import Session
from tenchat.common.identity import handle_message

Answer = Callable[[f.Request], Awaitable[list[object]]]


async def hostile_relay(answer: Answer) -> tuple[str, asyncio.AbstractServer]:
    async def handler(ws: ServerConnection) -> None:
        async for data in ws:
            frame = f.decode_request(data)  # type: ignore[arg-type]
            if isinstance(frame, f.Hello):
                out: list[object] = [f.Welcome(id=frame.id, version=1, relay="evil",
                                               challenge=os.urandom(32), max_frame=1 << 20)]
            elif isinstance(frame, f.Auth):
                out = [f.Authed(id=frame.id, user=frame.user, otk_count=100)]
            elif isinstance(frame, f.Privacy | f.SealedAccess):
                # every connect states the presence setting (and, once there is a profile
                # key, who may send sealed messages)
                out = [f.Ok(id=frame.id)]
            elif isinstance(frame, f.DevicesGet):  # as a relay from before devices
                out = [f.Error(id=frame.id, error="unknown_type")]
            elif isinstance(frame, f.PublishPrekeys):
                # The client's prekey upkeep runs beside the test (a home with no signed
                # prekey rotates one in on connect), at a time of its own: accepted here
                # so no answer() has to expect it.
                out = [f.PrekeyStatus(id=frame.id, otk_count=100)]
            else:
                out = await answer(frame)
            for item in out:
                await ws.send(f.encode(item))  # type: ignore[arg-type]

    server = await serve(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"ws://127.0.0.1:{port}", server  # type: ignore[return-value]


async def make_client(home: Path, url: str) -> Client:
    secrets = Secrets(identity_seed=os.urandom(32), storage_key=os.urandom(32),
                      handle="alice", relay=url)
    return Client(home, url, secrets, await Cache.open(home, secrets.storage_key))


@pytest.mark.asyncio
async def test_forged_handle_binding_is_refused(tmp_path: Path) -> None:
    evil = IdentityKey.generate()

    async def answer(frame: f.Request) -> list[object]:
        assert isinstance(frame, f.Lookup)
        # Signed by the relay's own key, but for another handle: not a binding of "bob".
        sig = evil.sign(handle_message("mallory", evil.public))
        return [f.HandleInfo(id=frame.id, handle="bob", user=evil.public, sig=sig)]

    url, server = await hostile_relay(answer)
    client = await make_client(tmp_path, url)
    try:
        with pytest.raises(PeerError, match="not validly signed"):
            await client.resolve("bob")
        assert await client.cache.contacts.by_handle("bob") is None  # nothing pinned
    finally:
        await client.close()
        server.close()


@pytest.mark.asyncio
async def test_forged_prekey_bundle_is_refused(tmp_path: Path) -> None:
    bob = IdentityKey.generate()
    evil = IdentityKey.generate()

    async def answer(frame: f.Request) -> list[object]:
        if isinstance(frame, f.Lookup):
            sig = bob.sign(handle_message("bob", bob.public))
            return [f.HandleInfo(id=frame.id, handle="bob", user=bob.public, sig=sig)]
        assert isinstance(frame, f.FetchBundle)
        spk = make_signed_prekey(evil, 1)  # the relay's own prekey, not signed by bob
        return [f.Bundle(id=frame.id, user=bob.public,
                         spk=f.SignedPrekey(key_id=1, pub=spk.public, sig=spk.sig))]

    url, server = await hostile_relay(answer)
    client = await make_client(tmp_path, url)
    try:
        with pytest.raises(InvalidSignature):
            await client.send_text("bob", "for bob only")
        assert await client.cache.outbox.items() == []  # nothing was encrypted to the relay
        contact = await client.cache.contacts.by_handle("bob")
        assert contact is not None
        # kept, unsent, for an honest relay later
        history = await client.cache.messages.history(contact.user, 10)
        assert [m.status for m in history] == [PENDING]
    finally:
        await client.close()
        server.close()


@pytest.mark.asyncio
async def test_garbage_and_forged_deliveries_are_dropped(tmp_path: Path) -> None:
    bob, carol = IdentityKey.generate(), IdentityKey.generate()
    acked: list[int] = []

    client_box: list[Client] = []
    spk_box: list[SignedPrekeySecret] = []

    async def answer(frame: f.Request) -> list[object]:
        if isinstance(frame, f.Ack):
            acked.extend(frame.seqs)
            return [f.Ok(id=frame.id)]
        if isinstance(frame, f.Whois):
            return [f.Error(id=frame.id, error="not_found")]
        assert isinstance(frame, f.Subscribe)
        me = client_box[0].user
        # carol writes a real first message to alice, the relay claims bob sent it
        spk = spk_box[0]
        carol_session = Session.initiate(carol, me, 1, spk.public, spk.sig, None, None)
        forged = carol_session.encrypt(b"\x81\xa1t\xa4text")
        return [
            f.Ok(id=frame.id),
            f.Deliver(seq=1, msg=os.urandom(16), sender=bob.public, at=0, body=b"\xc1junk"),
            f.Deliver(seq=2, msg=os.urandom(16), sender=bob.public, at=0, body=forged),
            f.Deliver(seq=3, msg=os.urandom(16), sender=bob.public, at=0,
                      body=os.urandom(200)),
            f.Synced(seq=3),
        ]

    url, server = await hostile_relay(answer)
    client = await make_client(tmp_path, url)
    client_box.append(client)
    # Stored before the sync: the fake relay answers one frame at a time, so its answer
    # can't wait for the home's lock that the client's prekey upkeep holds meanwhile.
    spk_box.append(make_signed_prekey(IdentityKey.from_seed(client.secrets.identity_seed), 1))
    async with client.cache.transaction():
        await client.cache.prekeys.put("spk", 1, spk_box[0].public, spk_box[0].private,
                                      client.clock())  # fresh: no rotation replaces it
    try:
        assert await client.sync() == 0
        assert await client.take_unshown() == []
        assert sorted(acked) == [1, 2, 3]  # dropped, acked, and the client lives on
    finally:
        await client.close()
        server.close()


@pytest.mark.asyncio
async def test_a_huge_proof_of_work_is_refused_not_solved(tmp_path: Path) -> None:
    """A relay asking a 32-bit proof-of-work (hours of CPU) gets a clear refusal at once
    (security review L3), and nothing is written."""
    import time

    from tenchat.client.service import MAX_POW_BITS
    from tenchat.common.errors import TenchatError

    async def handler(ws: ServerConnection) -> None:
        async for data in ws:
            frame = f.decode_request(data)  # type: ignore[arg-type]
            if isinstance(frame, f.Hello):
                out: object = f.Welcome(id=frame.id, version=1, relay="evil",
                                        challenge=os.urandom(32), max_frame=1 << 20, pow=32)
            elif isinstance(frame, f.Auth):
                out = f.Authed(id=frame.id, user=frame.user, otk_count=100)
            else:
                out = f.Ok(id=frame.id)
            await ws.send(f.encode(out))  # type: ignore[arg-type]

    server = await serve(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        start = time.monotonic()
        with pytest.raises(TenchatError, match=f"32-bit proof-of-work.*{MAX_POW_BITS}"):
            await Client.create(tmp_path / "home", f"ws://127.0.0.1:{port}", "alice", "pw")
        assert time.monotonic() - start < 5
        assert not (tmp_path / "home" / "keystore.msgpack").exists()
    finally:
        server.close()
