"""Hostile and broken input: every bad frame gets a stable error code and changes
nothing; the same connection keeps working and other connections don't notice."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from tenchat.common import frames, identity
from tenchat.common.frames import (
    Ack,
    Auth,
    Authed,
    Error,
    Fetch,
    FetchBundle,
    HandleInfo,
    Hello,
    Lookup,
    Messages,
    PublishPrekeys,
    Register,
    Send,
    SignedPrekey,
    Stored,
    Subscribe,
    Welcome,
    Whois,
)
from tests.relay.conftest import SMALL_FRAME
from tests.support.relay import RelayProcess
from tests.support.wsclient import (
    RelayClient,
    assert_alive,
    async_test,
    logged_in,
    msg_id,
    new_key,
    user_of,
)

pytestmark = pytest.mark.slow


def err(reply: msgspec.Struct, code: str, rid: int | None = -1) -> None:
    assert isinstance(reply, Error), reply
    assert reply.error == code, reply
    if rid != -1:
        assert reply.id == rid, reply


# --- frame-level errors ----------------------------------------------------------------------


@async_test
async def test_malformed_bytes(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        err(await a.request_raw(b"\xc1\xff not msgpack", None), "malformed", None)
        err(await a.request_raw(frames.encode(Hello(id=1, versions=[1]))[:-3], None), "malformed")
        err(await a.request_raw(msgspec.msgpack.encode([1, 2, 3]), None), "malformed", None)
        await assert_alive(a, b)


@async_test
async def test_text_frame(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        err(await a.request_raw('{"t": "hello", "id": 1}', None), "malformed", None)
        await assert_alive(a, b)


@async_test
async def test_oversized_frame(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        rid = a.next_id()
        big = Send(id=rid, to=b.user, msg=msg_id(), body=b"x" * SMALL_FRAME)
        err(await a.request(big), "too_large", rid)
        # Nothing was stored.
        page = await b.call(Fetch, user=b.user)
        assert isinstance(page, Messages) and page.items == []
        await assert_alive(a, b)


@async_test
async def test_frame_over_the_hard_ceiling_closes_with_1009(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        ceiling = max(8 * SMALL_FRAME, SMALL_FRAME + 1024 * 1024)
        await a.ws.send(b"\x00" * (ceiling + 1))
        await asyncio.wait_for(a.ws.wait_closed(), 10)
        assert a.ws.close_code == 1009
        async with await RelayClient.login(relay.url, a.key) as again:  # type: ignore[arg-type]
            await assert_alive(again, b)


@async_test
async def test_unknown_frame_type(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        raw = msgspec.msgpack.encode({"t": "launch_missiles", "id": 77})
        err(await a.request_raw(raw, 77), "unknown_type", 77)
        await assert_alive(a, b)


@async_test
async def test_before_auth_decoding_wins_over_unauthenticated(relay: RelayProcess) -> None:
    # docs/protocol.md §1.3 "Which error wins": decoding comes before the auth check.
    async with logged_in(relay.url) as (a, b):
        anon = await RelayClient.connect(relay.url)
        async with anon:
            def unknown(rid: int) -> bytes:
                return msgspec.msgpack.encode({"t": "launch_missiles", "id": rid})

            err(await anon.request_raw(unknown(41), 41), "unknown_type", 41)
            bad = msgspec.msgpack.encode({"t": "whois", "id": 42, "user": b"short"})
            err(await anon.request_raw(bad, 42), "malformed", 42)
            err(await anon.call(Whois, user=a.user), "unauthenticated")
            assert isinstance(await anon.hello(), Welcome)
            err(await anon.request_raw(unknown(43), 43), "unknown_type", 43)
            err(await anon.call(Subscribe), "unauthenticated")
            assert isinstance(await anon.auth(new_key()), Authed)
        await assert_alive(a, b)


@async_test
async def test_missing_field(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        raw = msgspec.msgpack.encode({"t": "send", "id": 5, "to": b.user, "body": b"x"})
        err(await a.request_raw(raw, 5), "malformed", 5)
        await assert_alive(a, b)


@async_test
async def test_invalid_fields(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        bad = [
            {"t": "send", "id": 6, "to": b.user[:31], "msg": msg_id(), "body": b"x"},
            {"t": "send", "id": 7, "to": b.user, "msg": b"short", "body": b"x"},
            {"t": "send", "id": 8, "to": b.user, "msg": msg_id(), "body": "text, not bytes"},
            {"t": "ack", "id": 9, "seqs": []},
            {"t": "ack", "id": 10, "seqs": [-1]},
            {"t": "fetch", "id": 11, "user": b.user, "limit": 100_000},
        ]
        for frame in bad:
            err(await a.request_raw(msgspec.msgpack.encode(frame), frame["id"]), "malformed")
        # No id at all: the error carries none.
        err(await a.request_raw(msgspec.msgpack.encode({"t": "subscribe"}), None), "malformed")
        await assert_alive(a, b)


@async_test
async def test_unauthenticated_request(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 2) as (a, b):
        anon = await RelayClient.connect(relay.url)
        async with anon:
            err(await anon.call(Whois, user=a.user), "unauthenticated")
            assert isinstance(await anon.hello(), Welcome)
            err(await anon.call(Send, to=a.user, msg=msg_id(), body=b"hi"), "unauthenticated")
            err(await anon.call(Subscribe), "unauthenticated")
            # The connection stays usable: auth now works.
            assert isinstance(await anon.auth(new_key()), Authed)
        await assert_alive(a, b)


@async_test
async def test_bad_auth_signature(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        c = await RelayClient.connect(relay.url)
        async with c:
            welcome = await c.hello()
            assert isinstance(welcome, Welcome)
            key, other = new_key(), new_key()
            origin = identity.relay_origin(relay.url)
            forged = other.sign(identity.auth_message(origin, welcome.challenge)).signature
            err(await c.call(Auth, user=user_of(key), sig=forged, origin=origin), "auth_failed")
            err(await c.call(Fetch, user=user_of(key)), "unauthenticated")
            assert isinstance(await c.auth(key), Authed)  # a correct auth still works
        await assert_alive(a, b)


@async_test
async def test_auth_for_another_relay_name(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        c = await RelayClient.connect(relay.url)
        async with c:
            await c.hello()
            err(await c.auth(new_key(), relay_name="evil.example"), "auth_failed")
        await assert_alive(a, b)


@async_test
async def test_auth_with_a_challenge_from_another_connection(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        c1, c2 = await RelayClient.connect(relay.url), await RelayClient.connect(relay.url)
        async with c1, c2:
            w1, _ = await c1.hello(), await c2.hello()
            assert isinstance(w1, Welcome)
            key = new_key()
            origin = identity.relay_origin(relay.url)
            replayed = key.sign(identity.auth_message(origin, w1.challenge)).signature
            err(await c2.call(Auth, user=user_of(key), sig=replayed, origin=origin),
                "auth_failed")
        await assert_alive(a, b)


@async_test
async def test_unsupported_version(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        c = await RelayClient.connect(relay.url)
        async with c:
            err(await c.hello(versions=[99, 1000]), "unsupported_version")
            welcome = await c.hello(versions=[99, 1])  # may try again with others
            assert isinstance(welcome, Welcome) and welcome.version == 1
        await assert_alive(a, b)


@async_test
async def test_frames_out_of_order(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        c = await RelayClient.connect(relay.url)
        async with c:
            key = new_key()
            err(await c.call(Auth, user=user_of(key), sig=bytes(64)), "protocol")
            assert isinstance(await c.hello(), Welcome)
            err(await c.call(Hello, versions=[1]), "protocol")
            assert isinstance(await c.auth(key), Authed)
            err(await c.auth(key), "protocol")  # a second auth
        await assert_alive(a, b)


# --- acting on other identities' data -------------------------------------------------------


@async_test
async def test_ack_of_someone_elses_message(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, mallory):
        stored = await alice.call(Send, to=bob.user, msg=msg_id(), body=b"for bob")
        assert isinstance(stored, Stored)
        mine = await alice.call(Send, to=mallory.user, msg=msg_id(), body=b"for mallory")
        assert isinstance(mine, Stored)
        # Mixing one's own seq with another's: forbidden, and nothing deleted at all.
        err(await mallory.call(Ack, seqs=[mine.seq, stored.seq]), "forbidden")
        err(await mallory.call(Ack, seqs=[stored.seq]), "forbidden")
        page = await mallory.call(Fetch, user=mallory.user)
        assert isinstance(page, Messages) and [m.seq for m in page.items] == [mine.seq]
        # Bob still gets his message.
        await bob.call(Subscribe)
        got = await bob.next_push(frames.Deliver)
        assert (got.seq, got.body) == (stored.seq, b"for bob")
        await assert_alive(mallory, alice)


@async_test
async def test_fetch_of_someone_elses_queue(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, mallory):
        stored = await alice.call(Send, to=bob.user, msg=msg_id(), body=b"for bob")
        assert isinstance(stored, Stored)
        err(await mallory.call(Fetch, user=bob.user), "forbidden")
        page = await bob.call(Fetch, user=bob.user)
        assert isinstance(page, Messages) and [m.body for m in page.items] == [b"for bob"]
        await assert_alive(mallory, bob)


@async_test
async def test_publish_prekeys_for_another_identity(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        bundle_before = await a.call(FetchBundle, user=b.user)
        pub = bytes(32)
        assert a.key is not None
        sig = a.key.sign(identity.signed_prekey_message(pub)).signature
        spk = SignedPrekey(key_id=9, pub=pub, sig=sig)
        err(await a.call(PublishPrekeys, user=b.user, spk=spk), "forbidden")
        bundle_after = await a.call(FetchBundle, user=b.user)
        assert bundle_after.spk == bundle_before.spk  # type: ignore[attr-defined]
        await assert_alive(a, b)


@async_test
async def test_bad_signed_prekey_signature(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        before = await b.call(FetchBundle, user=a.user)
        pub = bytes(range(32))
        assert b.key is not None
        wrong_signer = b.key.sign(identity.signed_prekey_message(pub)).signature
        spk = SignedPrekey(key_id=2, pub=pub, sig=wrong_signer)
        err(await a.call(PublishPrekeys, user=a.user, spk=spk), "bad_signature")
        spk = SignedPrekey(key_id=2, pub=pub, sig=bytes(64))
        err(await a.call(PublishPrekeys, user=a.user, spk=spk), "bad_signature")
        after = await b.call(FetchBundle, user=a.user)
        assert after.spk == before.spk  # type: ignore[attr-defined]
        await assert_alive(a, b)


# --- handles ------------------------------------------------------------------------------


@async_test
async def test_register_a_taken_handle(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (alice, mallory, b):
        info = await alice.register("alice_t1")
        assert isinstance(info, HandleInfo) and info.user == alice.user
        err(await mallory.register("alice_t1"), "handle_taken")
        err(await mallory.register("ALICE_T1"), "handle_taken")
        err(await mallory.register("@Alice_T1"), "handle_taken")
        found = await b.call(Lookup, handle="Alice_T1")
        assert isinstance(found, HandleInfo) and found.user == alice.user
        await assert_alive(mallory, b)


@async_test
async def test_invalid_handle(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        for bad in ["ab", "1abc", "al ice", "аlice", "a" * 33, "", "alice!"]:
            err(await a.call(Register, handle=bad, sig=bytes(64)), "bad_handle")
        err(await a.call(Lookup, handle="no such!"), "bad_handle")
        await assert_alive(a, b)


@async_test
async def test_register_with_a_bad_signature(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        assert b.key is not None
        sig = b.key.sign(identity.handle_message("bad_sig_t", a.user)).signature
        err(await a.call(Register, handle="bad_sig_t", sig=sig), "bad_signature")
        err(await b.call(Lookup, handle="bad_sig_t"), "not_found")
        await assert_alive(a, b)


@async_test
async def test_second_handle_is_forbidden_same_handle_is_idempotent(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        first = await a.register("first_t")
        assert isinstance(first, HandleInfo)
        again = await a.register("First_T")
        assert again == HandleInfo(id=again.id, handle="first_t", user=a.user, sig=first.sig)
        err(await a.register("second_t"), "forbidden")
        err(await b.call(Lookup, handle="second_t"), "not_found")
        who = await b.call(Whois, user=a.user)
        assert isinstance(who, HandleInfo) and who.handle == "first_t"
        await assert_alive(a, b)


@async_test
async def test_send_to_an_unknown_identity(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        err(await a.call(Send, to=user_of(new_key()), msg=msg_id(), body=b"?"), "not_found")
        err(await a.call(FetchBundle, user=user_of(new_key())), "not_found")
        err(await a.call(Whois, user=user_of(new_key())), "not_found")
        await assert_alive(a, b)
