"""The client core through its public methods, two real clients and a relay in this
process (tests/support/inproc.py; the clients reach it over loopback as in production,
with real SQLite caches and keystores in tmp_path): a conversation end to end, edits,
reactions, deletes, pins, timers, blocking, read receipts, settings, search, typing and
the errors a user meets. The CLI and TUI over the same calls are in the slow tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tenchat.client.cache import READ
from tenchat.client.events import (
    ONLINE,
    ConnectionChanged,
    MessageAdded,
    PresenceChanged,
    TypingChanged,
)
from tenchat.client.service import Client
from tenchat.common import identity
from tenchat.common.errors import TenchatError
from tenchat.common.frames import FetchBundle, HandleInfo, Register
from tenchat.common.identity import fingerprint
from tests.conftest import PASSPHRASE
from tests.support.inproc import InProcRelay, eventually

pytestmark = pytest.mark.asyncio


class Pair:
    def __init__(self, relay: InProcRelay, alice: Client, bob: Client) -> None:
        self.relay, self.alice, self.bob = relay, alice, bob


@pytest_asyncio.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    """alice and bob, registered on an in-process relay."""
    relay = await InProcRelay(tmp_path / "relay").start()
    alice = await Client.create(tmp_path / "alice", relay.url, "alice", PASSPHRASE)
    bob = await Client.create(tmp_path / "bob", relay.url, "bob", PASSPHRASE)
    try:
        yield Pair(relay, alice, bob)
    finally:
        await alice.close()
        await bob.close()
        if relay.server is not None:
            await relay.stop()


async def test_a_conversation_reaches_the_peer_once_and_in_order(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    sent = [await alice.send_text("@bob", f"hello {i}") for i in range(3)]
    assert all(row.outgoing for row in sent)
    await bob.sync()
    shown = await bob.take_unshown()
    assert [m.text for m in shown] == ["hello 0", "hello 1", "hello 2"]
    assert all(m.peer == alice.user and not m.outgoing for m in shown)
    await bob.sync()
    assert await bob.take_unshown() == []  # nothing shown twice
    [conv] = await bob.conversations()
    assert conv.peer == alice.user and conv.unread == 3
    assert await bob.mark_read(alice.user) == 3
    assert (await bob.conversations())[0].unread == 0
    reply = await bob.send_text("@alice", "hi alice", reply_to=sent[1].id)
    await alice.sync()
    [got] = await alice.take_unshown()
    assert (got.text, got.reply_to, got.id) == ("hi alice", sent[1].id, reply.id)
    page = await alice.page(bob.user)
    assert [m.text for m in page] == ["hello 0", "hello 1", "hello 2", "hi alice"]
    assert await alice.message_count(bob.user) == 4
    hits = await alice.search("alice")
    assert [h.message.id for h in hits] == [reply.id] and "[alice]" in hits[0].snippet


async def test_edits_reactions_pins_and_deletes_reach_the_peer(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    first = await alice.send_text("@bob", "typo")
    await alice.send_text("@bob", "second")
    await bob.sync()
    conv_b = alice.user  # bob's conversation with alice
    await alice.edit(bob.user, first.id, "fixed")
    await bob.react(conv_b, first.id, "👍")
    await alice.pin(bob.user, first.id)
    await bob.sync()
    await alice.sync()
    [edited] = [m for m in await bob.page(conv_b) if m.id == first.id]
    assert edited.text == "fixed" and edited.edited and edited.pinned
    await alice.delete(bob.user, first.id)
    await bob.sync()
    [gone] = [m for m in await bob.page(conv_b) if m.id == first.id]
    assert gone.deleted and "fixed" not in gone.text
    # only one's own messages are edited or deleted
    second = [m for m in await bob.page(conv_b) if m.text == "second"][0]
    with pytest.raises(TenchatError):
        await bob.edit(conv_b, second.id, "mine now")
    with pytest.raises(TenchatError):
        await bob.delete(conv_b, second.id)
    with pytest.raises(TenchatError):
        await alice.edit(bob.user, first.id, "   ")  # to nothing: delete instead
    with pytest.raises(TenchatError):
        await bob.react(conv_b, os.urandom(16), "👍")  # no such message
    with pytest.raises(TenchatError, match="deleted"):
        await bob.react(conv_b, first.id, "🎉")  # deleted for everyone: no new reactions


async def test_a_timer_makes_messages_vanish_on_both_sides(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    await alice.resolve("@bob")
    await alice.set_timer(bob.user, 1)
    await alice.send_text("@bob", "gone in a second")
    await bob.sync()
    [shown] = [m for m in await bob.take_unshown() if m.text == "gone in a second"]
    assert shown.expires_at > 0  # vanishes a second after it arrived
    [mine] = [m for m in await alice.page(bob.user) if m.text == "gone in a second"]
    assert mine.expires_at > 0
    for client, conv in ((bob, alice.user), (alice, bob.user)):
        async with asyncio.timeout(30):
            while not await client.purge_expired():  # (polls until its second is up)
                await asyncio.sleep(0.05)
        assert all(m.text != "gone in a second" for m in await client.page(conv))


async def test_a_blocked_contact_is_not_heard(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    contact = await bob.set_blocked("@alice", True)
    assert contact.blocked
    await alice.send_text("@bob", "can you hear me")
    await bob.sync()
    assert await bob.take_unshown() == []
    await bob.set_blocked("@alice", False)
    await alice.send_text("@bob", "now?")
    await bob.sync()
    assert [m.text for m in await bob.take_unshown()] == ["now?"]


async def test_settings_are_validated_and_kept(pair: Pair) -> None:
    alice = pair.alice
    settings = await alice.settings()
    assert settings and all(isinstance(v, bool) for v in settings.values())
    name = next(iter(settings))
    await alice.set_setting(name, not settings[name])
    assert await alice.setting(name) is (not settings[name])
    with pytest.raises(TenchatError, match="unknown setting"):
        await alice.set_setting("no_such_setting", True)


async def test_what_a_user_gets_wrong_is_one_clear_error(pair: Pair) -> None:
    alice = pair.alice
    with pytest.raises(TenchatError):
        await alice.send_text("@nobody_here", "hi")  # no such handle on the relay
    with pytest.raises(TenchatError):
        await alice.send_text("not a handle!", "hi")
    with pytest.raises(TenchatError):
        await alice.send_text("@bob", "")  # nothing to send
    with pytest.raises(TenchatError):
        await alice.conversation_id("@nobody_here")


async def test_safety_numbers_match_and_verification_is_recorded(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    _, mine = await alice.safety_number("@bob")
    _, theirs = await bob.safety_number("@alice")
    assert mine == theirs and len(mine.replace(" ", "")) == 60
    contact = await alice.set_verified("@bob", True)
    assert contact.verified
    assert not (await alice.set_verified("@bob", False)).verified


async def test_live_clients_see_each_others_presence_and_typing(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    await alice.send_text("@bob", "hi")  # a conversation both have: contacts
    await bob.sync()
    events: dict[str, list[object]] = {"alice": [], "bob": []}
    stops = [alice.subscribe(events["alice"].append), bob.subscribe(events["bob"].append)]
    runners = [asyncio.create_task(c.run()) for c in (bob, alice)]

    def seen(who: str, kind: type, **fields: object) -> bool:
        return any(isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())
                   for e in events[who])

    try:
        await eventually(lambda: seen("alice", ConnectionChanged, state=ONLINE)
                         and seen("bob", ConnectionChanged, state=ONLINE), timeout=30)
        await eventually(lambda: seen("bob", PresenceChanged, peer=alice.user, online=True),
                         timeout=30)
        await alice.send_typing(bob.user, True)
        await eventually(lambda: seen("bob", TypingChanged, peer=alice.user, active=True),
                         timeout=30)
        await alice.set_setting("typing", False)  # turned off: nothing leaves
        await alice.send_typing(bob.user, False)
        await alice.send_text("@bob", "barrier")
        await eventually(lambda: seen("bob", MessageAdded) and any(
            isinstance(e, MessageAdded) and e.message.text == "barrier"
            for e in events["bob"]), timeout=30)
        assert not seen("bob", TypingChanged, peer=alice.user, active=False)
    finally:
        for stop in stops:
            stop()
        for runner in runners:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner


async def test_an_attachment_is_sealed_uploaded_found_by_its_id_and_downloaded(
        pair: Pair, tmp_path: Path) -> None:
    alice, bob = pair.alice, pair.bob
    photo = tmp_path / "photo.bin"
    photo.write_bytes(os.urandom(5000))
    sent = await alice.send_attachment("@bob", photo, "a caption")
    await bob.sync()
    [shown] = await bob.take_unshown()
    assert shown.id == sent.id and "a caption" in shown.text
    conv, mid, ref = await bob.attachment(sent.id.hex()[:8])
    assert (conv, mid) == (alice.user, sent.id) and ref.size == 5000
    out = tmp_path / "got.bin"
    assert await bob.download(ref, out) == 5000
    assert out.read_bytes() == photo.read_bytes()
    for bad in ("abc", "zzzzzzzz", "00000000000000"):  # too short, not hex, no such
        with pytest.raises(TenchatError):
            await bob.attachment(bad)
    with pytest.raises(TenchatError):
        await alice.send_attachment("@bob", tmp_path / "missing.bin")
    with pytest.raises(TenchatError, match="caption too long"):
        await alice.send_attachment("@bob", photo, "x" * 100_000)


async def test_nothing_is_sent_to_a_blocked_contact(pair: Pair, tmp_path: Path) -> None:
    alice = pair.alice
    await alice.set_blocked("@bob", True)
    with pytest.raises(TenchatError, match="blocked"):
        await alice.send_text("@bob", "hi")
    photo = tmp_path / "p.bin"
    photo.write_bytes(b"x")
    with pytest.raises(TenchatError, match="blocked"):
        await alice.send_attachment("@bob", photo)


async def test_identity_set_up_and_unlock_rules(pair: Pair, tmp_path: Path) -> None:
    alice = pair.alice
    assert alice.whoami()["handle"] == "alice"
    assert alice.whoami()["user_id"] == alice.user.hex()
    with pytest.raises(TenchatError, match="already exists"):
        await Client.create(tmp_path / "alice", pair.relay.url, "alice2", PASSPHRASE)
    with pytest.raises(TenchatError, match="passphrase"):
        await Client.create(tmp_path / "carol", pair.relay.url, "carol", "")
    with pytest.raises(TenchatError):
        await Client.unlock(tmp_path / "bob", None, "wrong passphrase")


async def test_contacts_and_the_key_change_commands_without_a_change(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    added = await alice.add_contact("@bob")
    assert added.user == bob.user and added.handle == "bob"
    assert [c.user for c in await alice.contacts()] == [bob.user]
    assert await alice.display_name(bob.user) == "bob"
    contact, pending = await alice.pending_key("@bob")
    assert contact.user == bob.user and pending is None
    with pytest.raises(TenchatError, match="has not changed"):
        await alice.accept_key("@bob")
    with pytest.raises(TenchatError, match="has not changed"):
        await alice.reject_key("@bob")


async def test_moderation_is_checked_by_the_client_then_by_the_relay(pair: Pair) -> None:
    alice = pair.alice
    with pytest.raises(TenchatError, match="unknown action"):
        await alice.moderate("smite", "@bob")
    for target in ("not hex", ""):
        with pytest.raises(TenchatError, match="full id in hex"):
            await alice.moderate("remove_post", target)
    with pytest.raises(TenchatError):  # alice is no moderator: the relay refuses
        await alice.moderate("ban", "@bob")


async def test_one_time_prekeys_are_refilled_when_the_relay_runs_low(pair: Pair) -> None:
    alice, relay = pair.alice, pair.relay
    held = await relay.store.otk_count(alice.user)
    assert held >= 20
    taker = await relay.login()
    for _ in range(held - 5):  # others start sessions: the relay hands out her prekeys
        await taker.call(FetchBundle, user=alice.user)
    assert await relay.store.otk_count(alice.user) == 5
    await alice.sync()  # the relay's prekeys_low push: she publishes a new batch
    assert await relay.store.otk_count(alice.user) >= 5 + 100


async def test_a_group_conversation_with_read_receipts_pins_and_typing(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    group = await alice.groups.create("team", ["@bob"])
    assert await alice.conversation_id("team") == group
    first = await alice.send_text_to(group, "hello team")
    await bob.sync()
    [shown] = await bob.take_unshown()
    assert (shown.peer, shown.sender, shown.text) == (group, alice.user, "hello team")
    assert await bob.conversation_id("team") == group
    with pytest.raises(TenchatError, match="admins"):
        await bob.pin(group, first.id)  # a member may not pin
    await alice.pin(group, first.id)
    assert await bob.mark_read(group) == 1  # a read receipt to its author
    await alice.sync()
    await bob.sync()
    [pinned] = [m for m in await bob.page(group) if m.id == first.id]
    assert pinned.pinned
    [mine] = [m for m in await alice.page(group) if m.id == first.id]
    assert mine.status == READ


async def test_timer_bounds_and_starting_a_conversation(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    conv = await alice.start_conversation("@bob")
    assert conv.peer == bob.user and conv.unread == 0
    assert [c.peer for c in await alice.conversations()] == [bob.user]
    for seconds in (-1, 10**9):
        with pytest.raises(TenchatError, match="timer"):
            await alice.set_timer(bob.user, seconds)


async def test_a_live_client_reconnects_after_the_relay_restarts(pair: Pair) -> None:
    alice, bob, relay = pair.alice, pair.bob, pair.relay
    await alice.send_text("@bob", "before")
    events: list[object] = []
    stop = bob.subscribe(events.append)
    runner = asyncio.create_task(bob.run())

    def texts() -> list[str]:
        return [e.message.text for e in events if isinstance(e, MessageAdded)]

    try:
        await eventually(lambda: texts() == ["before"], timeout=30)
        await relay.restart()
        await eventually(lambda: any(isinstance(e, ConnectionChanged) and e.state != ONLINE
                                     for e in events), timeout=30)
        await alice.send_text("@bob", "after")
        await eventually(lambda: texts() == ["before", "after"], timeout=30)
        states = [e.state for e in events if isinstance(e, ConnectionChanged)]
        assert states[-1] == ONLINE and ONLINE in states[:-1]
    finally:
        stop()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def test_a_failing_listener_does_not_stop_message_handling(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    seen: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("a UI bug")

    stops = [bob.subscribe(broken), bob.subscribe(seen.append)]
    await alice.send_text("@bob", "still arrives")
    await bob.sync()
    assert any(isinstance(e, MessageAdded) and e.message.text == "still arrives" for e in seen)
    for stop in stops:
        stop()


async def test_a_message_over_the_limit_is_refused_before_anything_is_sent(
        pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    with pytest.raises(TenchatError, match="too long"):
        await alice.send_text("@bob", "x" * 100_000)
    await bob.sync()
    assert await bob.take_unshown() == []


async def test_a_peer_without_prekeys_cannot_be_written_to_yet(pair: Pair) -> None:
    alice, relay = pair.alice, pair.relay
    carol = await relay.login(publish=False)  # registered, but no signed prekey
    assert carol.key is not None
    sig = carol.key.sign(identity.handle_message("carol", carol.user)).signature
    assert isinstance(await carol.call(Register, handle="carol", sig=sig), HandleInfo)
    with pytest.raises(TenchatError, match="no prekeys"):
        await alice.send_text("@carol", "hi")


async def test_a_client_closes_as_a_context_manager(pair: Pair, tmp_path: Path) -> None:
    await pair.bob.close()
    async with await Client.unlock(tmp_path / "bob", None, PASSPHRASE) as bob:
        assert bob.whoami()["handle"] == "bob"
    # closed: the home's lock is free again, so it opens once more
    pair.bob = await Client.unlock(tmp_path / "bob", None, PASSPHRASE)


async def _a_new_key_claims_bob(pair: Pair, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> Client:
    """mallory's key, which a hostile relay's whois says is @bob's (signed by mallory's
    key: anyone can sign a claim to any handle), writes to alice."""
    from tenchat.common.frames import Whois
    from tenchat.relay import handlers

    alice, bob = pair.alice, pair.bob
    await alice.send_text("@bob", "hi bob")  # bob is pinned at alice's
    mallory = await Client.create(tmp_path / "mallory", pair.relay.url, "mallory", PASSPHRASE)
    claim = mallory.identity.sign(identity.handle_message("bob", mallory.user))
    honest = handlers.HANDLERS[Whois]

    async def whois(session: object, frame: Whois) -> object:
        if frame.user == mallory.user:
            return HandleInfo(id=frame.id, handle="bob", user=mallory.user, sig=claim)
        return await honest(session, frame)  # type: ignore[arg-type]

    monkeypatch.setitem(handlers.HANDLERS, Whois, whois)
    await mallory.send_text("@alice", "it's bob, on a new phone")
    await alice.sync()
    contact, pending = await alice.pending_key("@bob")
    assert contact.user == bob.user and pending is not None and pending.user == mallory.user
    assert "NEW KEY" in await alice.display_name(mallory.user)
    with pytest.raises(TenchatError):  # nothing typed goes to @bob until alice decides
        await alice.send_text("@bob", "which one are you?")
    return mallory


async def test_a_key_change_claimed_by_the_relay_is_held_until_rejected(
        pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = pair.alice, pair.bob
    mallory = await _a_new_key_claims_bob(pair, tmp_path, monkeypatch)
    try:
        await alice.reject_key("@bob")
        assert (await alice.pending_key("@bob"))[1] is None
        assert (await alice.resolve("@bob")).user == bob.user  # the pin stays
        await alice.send_text("@bob", "still you")
        await bob.sync()
        assert [m.text for m in await bob.take_unshown()][-1] == "still you"
    finally:
        await mallory.close()


async def test_an_accepted_key_change_moves_the_handle(
        pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = pair.alice
    mallory = await _a_new_key_claims_bob(pair, tmp_path, monkeypatch)
    try:
        await alice.accept_key("@bob")
        assert (await alice.resolve("@bob")).user == mallory.user
        await alice.send_text("@bob", "welcome back")
        await mallory.sync()
        assert "welcome back" in [m.text for m in await mallory.take_unshown()]
    finally:
        await mallory.close()


async def test_hiding_presence_reaches_the_relay_at_once_when_connected(
        pair: Pair) -> None:
    alice, relay = pair.alice, pair.relay
    await alice.connection()
    assert not await relay.store.hide_presence(alice.user)
    await alice.set_setting("hide_presence", True)
    assert await relay.store.hide_presence(alice.user)


async def test_no_timer_is_set_for_a_blocked_contact_and_unknown_keys_show_a_fingerprint(
        pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    await alice.set_blocked("@bob", True)
    with pytest.raises(TenchatError, match="blocked"):
        await alice.set_timer(bob.user, 60)
    stranger = os.urandom(32)
    assert await alice.display_name(stranger) == fingerprint(stranger)


async def test_a_burst_of_new_conversations_sends_two_watch_lists_not_one_each(
        tmp_path: Path) -> None:
    """The relay allows ``watch_rate`` watch lists a minute (each is a store look-up); a
    client that rewatched once per new conversation met ``rate_limited`` in a burst."""
    relay = await InProcRelay(tmp_path / "relay", watch_rate=3).start()
    alice = await Client.create(tmp_path / "alice", relay.url, "alice", PASSPHRASE)
    assert relay.server is not None
    metrics = relay.server.metrics

    def watch_lists() -> float:
        return metrics.registry.get_sample_value("tenchat_relay_frames_total",
                                                 {"type": "watch"}) or 0.0

    try:
        before = watch_lists()
        await asyncio.gather(*(alice._rewatch() for _ in range(20)))
        assert 1 <= watch_lists() - before <= 2
        assert metrics.registry.get_sample_value(
            "tenchat_relay_errors_total", {"code": "rate_limited"}) in (None, 0.0)
        await alice._rewatch()  # a later one is sent again
        assert watch_lists() - before <= 3
    finally:
        await alice.close()
        await relay.stop()
