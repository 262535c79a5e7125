"""Issue 12, the relay's side: what a hostile client can do to a relay and its users —
deep frames, the audit log, prekey draining, throwaway identities, reaction spam, file
modes, presence. Each over a real relay process on loopback with real SQLite."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import msgspec
import pytest

from tenchat.common import identity, social
from tenchat.common.frames import (
    Ack,
    Auth,
    Block,
    Bundle,
    Error,
    FetchBundle,
    HandleInfo,
    Ok,
    PostExtras,
    PostExtrasReq,
    PostPut,
    PrekeyStatus,
    Presence,
    PresenceState,
    ReactPut,
    Register,
    Send,
    Stored,
    Subscribe,
    Watch,
    Whois,
)
from tests.support.clients import PASSPHRASE
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


def err(reply: msgspec.Struct, code: str) -> Error:
    assert isinstance(reply, Error), reply
    assert reply.error == code, reply
    return reply


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- item 6: deep MessagePack ------------------------------------------------------------------


def deep_frame(depth: int = 1000, in_map: bool = False) -> bytes:
    """A ~1 KB frame: ``depth`` nested one-element arrays (or a request map whose "id"
    is that)."""
    nested = b"\x91" * depth + b"\x01"
    return b"\x82\xa1t\xa6whois\xa2id" + nested if in_map else nested


def test_log_budget_logs_a_few_then_one_in_a_while() -> None:
    from tenchat.relay.limits import LogBudget

    clock = Clock()
    budget = LogBudget(rate=0.1, burst=3, clock=clock)
    assert [budget.take() for _ in range(5)] == [(True, 0)] * 3 + [(False, 0)] * 2
    clock.now += 10  # one more token
    assert budget.take() == (True, 2)  # and the record says two were left out
    assert budget.take() == (False, 0)


@pytest.mark.slow
@async_test
@pytest.mark.relay(args=[])  # frames up to 100 KB: the default max_frame
async def test_deep_frames_get_malformed_and_the_connection_lives(
        fresh_relay: RelayProcess) -> None:
    relay = fresh_relay
    async with logged_in(relay.url, 2) as (alice, bob):
        log_before = len(relay.log_tail(10**9))
        for depth in (1000, 5000, 100_000):
            for in_map in (False, True):
                err(await alice.request_raw(deep_frame(depth, in_map), None), "malformed")
        for _ in range(200):
            await alice.ws.send(deep_frame())
        for _ in range(200):
            err(await alice.next_push(Error), "malformed")
        await assert_alive(alice, bob)  # the connection still works
        log = relay.log_tail(10**9)[log_before:]
        assert "Traceback" not in log
        assert len(log) < 4096, log[-2000:]


# --- item 11: file modes ------------------------------------------------------------------------


def modes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    out["."] = stat.S_IMODE(root.stat().st_mode)
    return out


@pytest.mark.slow
@async_test
async def test_data_dir_is_private_whatever_the_umask(tmp_path: Path) -> None:
    from tenchat.common.crypto.media import new_hasher
    from tenchat.common.frames import BlobBegin, BlobChunk, BlobStatus

    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "old.log").write_text("from an older relay\n")
    os.chmod(data / "old.log", 0o644)
    old = os.umask(0o022)
    try:
        relay = RelayProcess(data).start()
    finally:
        os.umask(old)
    try:
        async with logged_in(relay.url, 2) as (alice, bob):
            await assert_alive(alice, bob)
            blob = os.urandom(3000)
            h = new_hasher()
            h.update(blob)
            digest = h.digest()
            st = await alice.call(BlobBegin, hash=digest, size=len(blob))
            assert isinstance(st, BlobStatus), st
            half = await alice.call(BlobChunk, hash=digest, offset=0, data=blob[:1000])
            assert isinstance(half, BlobStatus), half
            seen = modes(data)  # a partial upload, the WAL and its index are there now
            assert any(name.endswith(".part") for name in seen), seen
            assert any(name.endswith("-wal") for name in seen), seen
            done = await alice.call(BlobChunk, hash=digest, offset=1000, data=blob[1000:])
            assert isinstance(done, BlobStatus) and done.offset == len(blob), done
            seen.update(modes(data))
    finally:
        relay.terminate()
    assert any(name.startswith("blobs/") and len(name) > 40 for name in seen), seen
    for name, mode in seen.items():
        path = data / name
        if path.is_dir():
            assert mode == 0o700, (name, oct(mode))
        else:
            assert mode == 0o600, (name, oct(mode))


# --- item 2: failed authentications and the audit log ------------------------------------------


def db_rows(relay: RelayProcess, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
    import sqlite3

    path = Path(relay.data_dir) / "relay.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return list(db.execute(sql, params))


async def bad_auth(c: RelayClient) -> msgspec.Struct:
    """An auth for this relay whose signature is by another key: a bad signature."""
    assert c.welcome is not None
    sig = new_key().sign(identity.auth_message(c.origin, c.welcome.challenge)).signature
    return await c.call(Auth, user=user_of(new_key()), sig=sig, origin=c.origin)


@pytest.mark.slow
@async_test
@pytest.mark.relay(env={"TENCHAT_RELAY_AUTH_FAIL_RATE": "10"})
async def test_failed_auths_close_the_connection_and_aggregate(
        fresh_relay: RelayProcess) -> None:
    relay = fresh_relay
    # One connection: the third failure closes it.
    c = await RelayClient.connect(relay.url)
    await c.hello()
    for _ in range(3):
        err(await bad_auth(c), "auth_failed")
    await asyncio.wait_for(c.ws.wait_closed(), 5)
    assert c.ws.close_code == 1008 and "failed auth" in c.ws.close_reason
    # More connections from the address: past 10 failures a minute, rate_limited (and
    # closed) without an audit row.
    for _ in range(7):
        c = await RelayClient.connect(relay.url)
        await c.hello()
        err(await bad_auth(c), "auth_failed")
        await c.close()
    c = await RelayClient.connect(relay.url)
    await c.hello()
    limited = err(await bad_auth(c), "rate_limited")
    assert limited.retry_after > 0
    await asyncio.wait_for(c.ws.wait_closed(), 5)
    # Signing in properly from the same address still works.
    async with logged_in(relay.url, 2) as (alice, bob):
        await assert_alive(alice, bob)
    relay.terminate()  # SIGTERM: the open window's repeats are written at shutdown
    rows = db_rows(relay, "SELECT action, detail, count FROM audit")
    assert rows == [("auth_failed", "bad signature", 10)], rows


@pytest.mark.asyncio
async def test_audit_retention_deletes_old_rows(tmp_path: Path) -> None:
    from tenchat.relay.retention import DAY_MS, Retention
    from tenchat.relay.store import SQLiteStore

    now = 1_000 * DAY_MS

    store = SQLiteStore(tmp_path / "relay.sqlite3", clock=lambda: now)
    await store.open()
    try:
        for age_days in (200, 91, 89, 1):
            await store.audit_insert(
                (now - age_days * DAY_MS, None, "auth_failed", None, f"{age_days}", None, 1))
        retention = Retention(store, None, retention_days=30, upload_expiry_hours=24,
                              batch=2, clock=lambda: now, audit_retention_days=90)
        report = await retention.run_once()
        assert report.audit == 2
        rows = await store.custom_read("SELECT detail FROM audit ORDER BY id")
        assert [r[0] for r in rows] == ["89", "1"]
        kept = Retention(store, None, retention_days=30, upload_expiry_hours=24, batch=2,
                         clock=lambda: now + 10_000 * DAY_MS, audit_retention_days=0)
        assert (await kept.run_once()).audit == 0  # 0 keeps them
    finally:
        await store.close()


# --- item 5: fetch_bundle per requester and per target -----------------------------------------


@pytest.mark.slow
@async_test
@pytest.mark.relay(env={"TENCHAT_RELAY_BUNDLE_RATE": "6", "TENCHAT_RELAY_BUNDLE_BURST": "5",
                        "TENCHAT_RELAY_OTK_RATE": "3"})
async def test_fetch_bundle_is_limited_per_requester_and_per_target(
        fresh_relay: RelayProcess) -> None:
    relay = fresh_relay
    async with logged_in(relay.url, 3, publish=False) as (alice, bob, carol):
        status = await alice.publish(otk_ids=range(20))
        assert isinstance(status, PrekeyStatus) and status.otk_count == 20
        got = [await bob.call(FetchBundle, user=alice.user) for _ in range(5)]
        assert all(isinstance(b, Bundle) for b in got), got
        # three one-time prekeys for alice per hour, then bundles without one
        assert [b.otk is not None for b in got] == [True] * 3 + [False] * 2  # type: ignore[attr-defined]
        limited = err(await bob.call(FetchBundle, user=alice.user), "rate_limited")
        assert limited.retry_after > 0  # bob's own five a minute (burst) are used up
        other = await carol.call(FetchBundle, user=alice.user)
        assert isinstance(other, Bundle) and other.otk is None  # the target's budget
        authed = await RelayClient.login(relay.url, alice.key)  # type: ignore[arg-type]
        assert isinstance(authed, RelayClient)
        fresh = await authed.call(Whois, user=alice.user)
        await authed.close()
        assert isinstance(fresh, Error)
    assert db_rows(relay, "SELECT count(*) FROM one_time_prekeys") == [(17,)]


# --- item 8: new identities, registrations, reserved handles, queue share ----------------------


@pytest.mark.slow
@async_test
async def test_reserved_handles_and_pow_on_loopback_off(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 2) as (alice, bob):
        assert alice.welcome is not None and alice.welcome.pow == 0  # loopback: exempt
        for handle in ("admin", "Support", "root", "@security"):
            err(await alice.register(handle), "handle_reserved")
        assert isinstance(await alice.register("alice_1"), HandleInfo)


@pytest.mark.slow
@async_test
@pytest.mark.relay(env={"TENCHAT_RELAY_LIMIT_EXEMPT": "", "TENCHAT_RELAY_IDENT_RATE": "3",
                        "TENCHAT_RELAY_HANDLE_RATE": "2", "TENCHAT_RELAY_REGISTER_POW": "8"})
async def test_identity_and_registration_limits_per_address(
        fresh_relay: RelayProcess) -> None:
    relay = fresh_relay
    keys = [new_key() for _ in range(4)]
    clients = [await RelayClient.login(relay.url, k) for k in keys[:3]]
    late = await RelayClient.connect(relay.url)
    await late.hello()
    limited = err(await late.auth(keys[3]), "rate_limited")  # a 4th new identity
    assert limited.retry_after > 0 and "identities" in limited.message
    await late.close()
    # proof-of-work: asked in welcome, bound to the connection, identity and handle
    a, b, c = clients
    assert a.welcome is not None and a.welcome.pow == 8
    err(await a.register("alice"), "pow_required")
    assert a.welcome is not None
    # A nonce solved for another handle (one that happens to pass for "alice" too, a
    # 1-in-256 chance at 8 bits, is skipped so the check is deterministic).
    wrong = next(n for n in (identity.solve_pow(a.welcome.challenge, a.user, f"not{i}", 8)
                             for i in range(100))
                 if not identity.pow_ok(a.welcome.challenge, a.user, "alice", n, 8))
    err(await register_pow(a, "alice", wrong), "pow_required")
    nonce = identity.solve_pow(a.welcome.challenge, a.user, "alice", 8)
    assert isinstance(await register_pow(a, "alice", nonce), HandleInfo)
    assert isinstance(await register_pow(b, "bobby"), HandleInfo)
    limited = err(await register_pow(c, "carol"), "rate_limited")  # 2 an hour
    assert "registrations" in limited.message
    # identities the relay knows come back without taking a token
    await a.close()
    again = await RelayClient.login(relay.url, keys[0])
    await again.close()
    for x in (b, c):
        await x.close()


async def register_pow(c: RelayClient, handle: str, nonce: bytes | None = None
                       ) -> msgspec.Struct:
    assert c.key is not None and c.welcome is not None
    if nonce is None:
        nonce = identity.solve_pow(c.welcome.challenge, c.user, handle, c.welcome.pow)
    sig = c.key.sign(identity.handle_message(handle, c.user)).signature
    return await c.call(Register, handle=handle, sig=sig, pow=nonce)


@pytest.mark.slow
@pytest.mark.relay(env={"TENCHAT_RELAY_LIMIT_EXEMPT": "", "TENCHAT_RELAY_REGISTER_POW": "12"})
@async_test
async def test_client_does_the_proof_of_work(tmp_path: Path,
                                             fresh_relay: RelayProcess) -> None:
    from tenchat.client.service import Client

    async with logged_in(fresh_relay.url, 1, publish=False) as (c,):
        err(await c.register("bob"), "pow_required")  # the relay does ask for it
    alice = await Client.create(tmp_path / "alice", fresh_relay.url, "alice", PASSPHRASE)
    await alice.close()
    assert db_rows(fresh_relay, "SELECT handle FROM handles") == [("alice",)]


@pytest.mark.slow
@async_test
@pytest.mark.relay(env={"TENCHAT_RELAY_QUEUE_MAX": "10", "TENCHAT_RELAY_QUEUE_SHARE": "30"})
async def test_one_sender_gets_a_share_of_a_queue(fresh_relay: RelayProcess) -> None:
    relay = fresh_relay
    async with logged_in(relay.url, 3) as (spammer, friend, victim):
        stored = [await spammer.call(Send, to=victim.user, msg=msg_id(), body=b"buy")
                  for _ in range(3)]
        assert all(isinstance(s, Stored) for s in stored), stored
        refused = err(await spammer.call(Send, to=victim.user, msg=msg_id(), body=b"buy"),
                      "queue_share")
        assert "30%" in refused.message
        ok = await friend.call(Send, to=victim.user, msg=msg_id(), body=b"hi")
        assert isinstance(ok, Stored)  # others still reach the victim
        assert isinstance(await victim.call(Ack, seqs=[stored[0].seq]), Ok)  # type: ignore[attr-defined]
        again = await spammer.call(Send, to=victim.user, msg=msg_id(), body=b"buy")
        assert isinstance(again, Stored)  # one read: room for one more


# --- item 9: reactions ---------------------------------------------------------------------------


@pytest.mark.slow
@async_test
async def test_reactions_are_one_emoji_and_a_few_per_author(relay: RelayProcess) -> None:
    from tests.relay.test_relay_comments import react
    from tests.relay.test_relay_posts import post

    async with logged_in(relay.url, 2) as (alice, bob):
        record = post(alice, "buy my stuff")
        p = social.open_post(record)
        assert isinstance(p, social.Post)
        assert isinstance(await alice.call(PostPut, record=record), Ok)
        for text in ("BUY NOW 00000", "👍👍", "a", "👍 ", ":)"):
            err(await bob.call(ReactPut, record=react(bob, p, text, 1)), "bad_reaction")
        for emoji in ("👍", "👍🏽", "👨‍👩‍👧"):
            assert isinstance(await bob.call(ReactPut, record=react(bob, p, emoji, 1)), Ok)
        err(await bob.call(ReactPut, record=react(bob, p, "🎉", 1)), "too_many_reactions")
        # the same emoji again replaces; a removal makes room
        assert isinstance(await bob.call(ReactPut, record=react(bob, p, "👍", 2)), Ok)
        assert isinstance(await bob.call(ReactPut, record=react(bob, p, "👍", 3, True)), Ok)
        assert isinstance(await bob.call(ReactPut, record=react(bob, p, "🎉", 4)), Ok)
        got = await alice.call(PostExtrasReq, post_ids=[p.id])
        assert isinstance(got, PostExtras)
        assert got.items[0].reactions == {"👍🏽": 1, "👨‍👩‍👧": 1, "🎉": 1}


def test_is_reaction_emoji() -> None:
    for ok in ("👍", "❤️", "❤", "🇫🇷", "#️⃣", "👩🏽‍💻"):
        assert social.is_reaction_emoji(ok), ok
    for bad in ("", "BUY", "👍👍", "1", "a👍", "\u202e👍", "👍" * 20):
        assert not social.is_reaction_emoji(bad), bad


# --- item 12: presence --------------------------------------------------------------------------


@pytest.mark.slow
@async_test
async def test_presence_only_for_contacts(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, stranger):
        # alice and bob talk; the stranger has only sent bob a message
        await send_to(bob, alice.user)
        await send_to(stranger, bob.user)
        await drain(bob)  # subscribed: online
        state = await stranger.call(Watch, users=[bob.user])
        assert isinstance(state, PresenceState) and state.online == []
        state = await alice.call(Watch, users=[bob.user])
        assert isinstance(state, PresenceState) and state.online == [bob.user]
        # a stranger never sees bob come and go
        assert bob.key is not None
        bob2 = await RelayClient.login(relay.url, bob.key)
        await bob.close()
        assert (await alice.next_push(Presence)).online is False
        await stranger.no_push()
        await bob2.call(Subscribe)
        assert (await alice.next_push(Presence)).online is True
        await stranger.no_push()
        # automatic messages (receipts, sender keys: no `conv`) make no contact
        stored = await bob2.call(Send, to=stranger.user, msg=msg_id(), body=b"receipt")
        assert isinstance(stored, Stored), stored
        await stranger.no_push()
        state = await stranger.call(Watch, users=[bob.user])
        assert isinstance(state, PresenceState) and state.online == []
        # ... until bob writes to them: from then on they are a contact
        await send_to(bob2, stranger.user)
        push = await stranger.next_push(Presence)
        assert (push.user, push.online) == (bob.user, True)
        # blocking takes it back at once
        assert isinstance(await bob2.call(Block, user=stranger.user), Ok)
        push = await stranger.next_push(Presence)
        assert (push.user, push.online) == (bob.user, False)
        state = await stranger.call(Watch, users=[bob.user])
        assert isinstance(state, PresenceState) and state.online == []
        await bob2.close()


async def send_to(c: RelayClient, to: bytes) -> None:
    stored = await c.call(Send, to=to, msg=msg_id(), body=b"hello", conv=True)
    assert isinstance(stored, Stored), stored


async def drain(c: RelayClient) -> None:
    from tests.support.groups import drain_all

    await drain_all(c)


@pytest.mark.slow
def test_cli_hide_presence_reaches_the_relay_both_ways(tmp_path: Path,
                                                       fresh_relay: RelayProcess) -> None:
    from tests.conftest import Cli

    relay = fresh_relay
    cli = Cli(tmp_path, relay)
    cli("alice", "init", "--handle", "alice")
    user = bytes.fromhex(cli("alice", "--json", "whoami").json()["user_id"])
    hidden = "SELECT hide_presence FROM privacy WHERE user = ?"
    cli("alice", "settings", "set", "hide_presence", "on")
    assert db_rows(relay, hidden, (user,)) == [(1,)]
    cli("alice", "settings", "set", "hide_presence", "off")
    assert db_rows(relay, hidden, (user,)) == [(0,)]
    cli("alice", "settings", "set", "hide_presence", "on")
    assert db_rows(relay, hidden, (user,)) == [(1,)]


@pytest.mark.slow
def test_cli_react_post_refuses_non_emoji_and_reports_the_limit(tmp_path: Path,
                                                                fresh_relay: RelayProcess) -> None:
    from tests.conftest import Cli

    relay = fresh_relay
    cli = Cli(tmp_path, relay)
    for name in ("alice", "bob"):
        cli(name, "init", "--handle", name)
    cli("bob", "follow", "alice")
    pid = cli("alice", "--json", "post", "hello").json()["id"]
    res = cli("bob", "react-post", pid, "BUY NOW", check=False)
    assert res.code == 2 and res.err.startswith("error: ") and "one emoji" in res.err
    assert "Traceback" not in res.err
    for emoji in ("👍", "🎉", "❤️"):
        cli("bob", "react-post", pid, emoji)
    res = cli("bob", "react-post", pid, "😀", check=False)
    assert res.code == 1 and "3 reactions" in res.err and "Traceback" not in res.err
    assert len(res.err.strip().splitlines()) == 1
    cli("bob", "react-post", pid, "👍", "--remove")  # room for another
    cli("bob", "react-post", pid, "😀")
