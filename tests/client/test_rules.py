"""The pure receive rules (client/rules.py), driven directly: no relay, no network.

A small in-memory model answers the :class:`Facts` and applies the writes, so whole
sequences — duplicates, out-of-order delivery, receipts before messages, edits and deletes
of unknown ids, group membership racing posts, expiry — run in microseconds. The last
tests run the same sequences through the real edge (``Client.apply_content`` over a
SQLite cache) and check it agrees with the model. tests/client/test_outbox_stateful.py is
the other half: the outbox and dedupe across crashes, with a relay.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenchat.client.cache import DELIVERED, READ, SENT, Cache, MessageRow
from tenchat.client.events import (
    ConversationChanged,
    MessageAdded,
    MessageChanged,
    StatusChanged,
    TypingChanged,
)
from tenchat.client.keystore import Secrets
from tenchat.client.rules import (
    AddMessage,
    DeleteMessage,
    EditText,
    Effects,
    Facts,
    Incoming,
    RaiseStatus,
    React,
    RecordReceipts,
    SetPinned,
    SetTimer,
    Target,
    apply,
)
from tenchat.common import content as c
from tenchat.common.crypto.media import MediaRef
from tenchat.common.groups import ADMIN, MEMBER, GroupState

ME = "alice"
BOB, CAROL, MALLORY = b"b" * 32, b"c" * 32, b"m" * 32
GROUP = b"g" * 16
NOW = 1_000_000


def mid(n: int) -> bytes:
    return n.to_bytes(16, "big")


@dataclass
class Model:
    """The cache as the rules see it, in memory."""

    messages: dict[tuple[bytes, bytes], dict] = field(default_factory=dict)  # type: ignore[type-arg]
    reactions: set[tuple[bytes, bytes, bytes, str]] = field(default_factory=set)
    timers: dict[bytes, int] = field(default_factory=dict)
    group_receipts: dict[tuple[bytes, bytes, bytes], int] = field(default_factory=dict)
    groups: dict[bytes, frozenset[bytes]] = field(default_factory=dict)
    now: int = NOW

    def sent(self, conv: bytes, n: int, status: int = SENT) -> None:
        """One of our own messages, already sent."""
        self.messages[(conv, mid(n))] = dict(outgoing=True, sender=None, deleted=False,
                                             status=status, text=f"mine {n}", pinned=False)

    def facts(self, item: Incoming) -> Facts:
        content = item.content
        base = dict(me_handle=ME, now=self.now)
        receipt_group = None
        if isinstance(content, c.Receipt) and content.group is not None:
            receipt_group = self.groups.get(content.group)
        match content:
            case c.Text() | c.Attachment():
                return Facts(**base, known=(item.conv, content.id) in self.messages)
            case c.Receipt():
                conv = content.group if content.group is not None else item.author
                return Facts(**base, receipt_group=receipt_group, statuses={
                    i: m["status"] for i in content.ids
                    if (m := self.messages.get((conv, i))) and m["outgoing"]})
            case c.Reaction() | c.Edit() | c.Delete() | c.Pin():
                m = self.messages.get((item.conv, content.target))
                target = Target(m["outgoing"], m["sender"], m["deleted"]) if m else None
                reacted = isinstance(content, c.Reaction) and (
                    item.conv, content.target, item.author, content.emoji) in self.reactions
                return Facts(**base, target=target, reacted=reacted)
        return Facts(**base)

    def write(self, effects: Effects) -> None:
        for w in effects.writes:
            match w:
                case AddMessage(row, _ref):
                    assert (row.peer, row.id) not in self.messages, "a duplicate was written"
                    self.messages[(row.peer, row.id)] = dict(
                        outgoing=False, sender=row.sender, deleted=False, status=row.status,
                        text=row.text, pinned=False, expires_at=row.expires_at)
                case RaiseStatus(conv, ids, status):
                    for i in ids:
                        assert self.messages[(conv, i)]["status"] < status, "moved backwards"
                        self.messages[(conv, i)]["status"] = status
                case RecordReceipts(conv, ids, reader, status):
                    for i in ids:
                        key = (conv, i, reader)
                        self.group_receipts[key] = max(self.group_receipts.get(key, 0), status)
                case React(conv, target, reactor, emoji, remove):
                    (self.reactions.discard if remove else self.reactions.add)(
                        (conv, target, reactor, emoji))
                case EditText(conv, target, _a, _g, text, _m):
                    self.messages[(conv, target)]["text"] = text
                case DeleteMessage(conv, target, _a, _g):
                    self.messages[(conv, target)].update(text="", deleted=True)
                    self.reactions = {r for r in self.reactions if r[:2] != (conv, target)}
                case SetPinned(conv, target, pinned):
                    self.messages[(conv, target)]["pinned"] = pinned
                case SetTimer(conv, seconds):
                    self.timers[conv] = seconds

    def receive(self, conv: bytes, author: bytes, content: c.Content,
                group: GroupState | None = None) -> Effects:
        item = Incoming(conv, author, content, group)
        effects = apply(self.facts(item), item)
        self.write(effects)
        return effects


def text(n: int, body: str = "hello", **kw: object) -> c.Text:
    return c.Text(id=mid(n), text=body, sent_at=n, **kw)  # type: ignore[arg-type]


def group_of(roles: dict[bytes, str]) -> GroupState:
    return GroupState(group=GROUP, version=1, roles=roles)


# --- messages -------------------------------------------------------------------------


def test_a_message_is_added_once_and_a_redelivery_changes_nothing() -> None:
    m = Model()
    first = m.receive(BOB, BOB, text(1))
    assert [type(e) for e in first.events] == [MessageAdded]
    assert first.receipts == [(BOB, None, mid(1))]
    assert [r.id for r in first.new] == [mid(1)]
    again = m.receive(BOB, BOB, text(1, "a different body, same id"))
    assert not again and again.new == []
    assert m.messages[(BOB, mid(1))]["text"] == "hello"


def test_the_same_id_from_two_peers_is_two_messages() -> None:
    """Ids are per conversation: a hostile peer can't shadow another's message."""
    m = Model()
    assert m.receive(BOB, BOB, text(1)).new
    assert m.receive(CAROL, CAROL, text(1)).new


def test_out_of_order_delivery_keeps_every_message_and_the_sender_order() -> None:
    m = Model()
    for n in (3, 1, 2):
        m.receive(BOB, BOB, text(n))
    assert sorted(i for (_c, i) in m.messages) == [mid(1), mid(2), mid(3)]
    rows = [m.messages[(BOB, mid(n))] for n in (1, 2, 3)]
    assert all(r["status"] == DELIVERED for r in rows)


def test_expiry_counts_from_arrival_on_our_clock() -> None:
    m = Model(now=5_000)
    added = m.receive(BOB, BOB, text(1, expires_in=30))
    assert added.new[0].expires_at == 5_000 + 30_000
    assert m.receive(BOB, BOB, text(2)).new[0].expires_at == 0


def test_mentions_are_whole_words_case_insensitive() -> None:
    m = Model()
    assert m.receive(BOB, BOB, text(1, "hi @Alice!")).new[0].mention
    assert not m.receive(BOB, BOB, text(2, "hi @alicee")).new[0].mention
    assert not m.receive(BOB, BOB, text(3, "mail alice@example.org")).new[0].mention


def test_an_attachment_shows_its_caption_or_its_name() -> None:
    ref = MediaRef(hash=bytes(32), key=bytes(32), size=10, mime="image/png", name="cat.png")
    m = Model()
    named = m.receive(BOB, BOB, c.Attachment(id=mid(1), ref=ref, sent_at=1))
    assert named.new[0].text == "[cat.png]"
    assert named.writes == [AddMessage(named.new[0], ref)]
    said = m.receive(BOB, BOB, c.Attachment(id=mid(2), ref=ref, sent_at=2, caption="@alice"))
    assert said.new[0].text == "@alice" and said.new[0].mention


def test_in_a_group_the_author_is_kept_and_the_receipt_names_the_group() -> None:
    m = Model()
    effects = m.receive(GROUP, BOB, text(1), group_of({BOB: MEMBER}))
    assert effects.new[0].sender == BOB and effects.new[0].peer == GROUP
    assert effects.receipts == [(BOB, GROUP, mid(1))]


# --- receipts ---------------------------------------------------------------------------


def test_a_receipt_before_its_message_changes_nothing() -> None:
    m = Model()
    early = m.receive(BOB, BOB, c.Receipt(kind=c.DELIVERED, ids=[mid(7)], at=1))
    assert not early
    m.sent(BOB, 7)
    late = m.receive(BOB, BOB, c.Receipt(kind=c.DELIVERED, ids=[mid(7)], at=2))
    assert late.writes == [RaiseStatus(BOB, [mid(7)], DELIVERED)]
    assert late.events == [StatusChanged(BOB, [mid(7)], DELIVERED)]


def test_statuses_only_move_forward() -> None:
    m = Model()
    m.sent(BOB, 1)
    m.receive(BOB, BOB, c.Receipt(kind=c.READ, ids=[mid(1)], at=1))
    assert m.messages[(BOB, mid(1))]["status"] == READ
    assert not m.receive(BOB, BOB, c.Receipt(kind=c.DELIVERED, ids=[mid(1)], at=2))
    assert not m.receive(BOB, BOB, c.Receipt(kind=c.READ, ids=[mid(1), mid(1)], at=3))


def test_a_receipt_touches_only_our_messages_to_its_sender() -> None:
    m = Model()
    m.sent(BOB, 1)
    m.receive(BOB, BOB, text(2))  # bob's own message: not ours to mark
    assert not m.receive(CAROL, CAROL, c.Receipt(kind=c.READ, ids=[mid(1)], at=1))
    assert not m.receive(BOB, BOB, c.Receipt(kind=c.READ, ids=[mid(2)], at=1))
    assert m.messages[(BOB, mid(1))]["status"] == SENT


def test_group_receipts_count_only_from_members() -> None:
    m = Model(groups={GROUP: frozenset({BOB, CAROL})})
    m.sent(GROUP, 1)
    receipt = c.Receipt(kind=c.READ, ids=[mid(1)], at=1, group=GROUP)
    assert not m.receive(MALLORY, MALLORY, receipt)  # not a member
    assert not m.receive(GROUP, BOB, receipt, group_of({BOB: MEMBER}))  # sent in the group
    got = m.receive(BOB, BOB, receipt)
    assert RecordReceipts(GROUP, [mid(1)], BOB, READ) in got.writes
    # A second member's read: no status left to raise, still counted and shown.
    second = m.receive(CAROL, CAROL, receipt)
    assert second.writes == [RecordReceipts(GROUP, [mid(1)], CAROL, READ)]
    assert second.events == [StatusChanged(GROUP, [mid(1)], READ)]


def test_a_group_receipt_for_a_group_we_do_not_know_is_dropped() -> None:
    m = Model()
    assert not m.receive(BOB, BOB, c.Receipt(kind=c.READ, ids=[mid(1)], at=1, group=GROUP))


# --- actions on messages ----------------------------------------------------------------


@pytest.mark.parametrize("action", [
    c.Edit(target=mid(9), text="changed"), c.Delete(target=mid(9)),
    c.Pin(target=mid(9)), c.Reaction(target=mid(9), emoji="👍"),
    c.Reaction(target=mid(9), emoji="👍", remove=True)])
def test_an_action_on_an_unknown_id_does_nothing(action: c.Content) -> None:
    m = Model()
    assert not m.receive(BOB, BOB, action)
    assert m.messages == {} and m.reactions == set()


def test_an_edit_before_its_message_is_lost_but_a_later_one_applies() -> None:
    m = Model()
    assert not m.receive(BOB, BOB, c.Edit(target=mid(1), text="v2"))
    m.receive(BOB, BOB, text(1, "v1"))
    assert m.receive(BOB, BOB, c.Edit(target=mid(1), text="v3 @alice")).writes == [
        EditText(BOB, mid(1), BOB, False, "v3 @alice", True)]
    assert m.messages[(BOB, mid(1))]["text"] == "v3 @alice"


def test_only_the_author_edits_or_deletes() -> None:
    m = Model()
    m.sent(BOB, 1)  # ours: bob can't touch it
    assert not m.receive(BOB, BOB, c.Edit(target=mid(1), text="forged"))
    assert not m.receive(BOB, BOB, c.Delete(target=mid(1)))
    roles = group_of({BOB: MEMBER, CAROL: MEMBER})
    m.receive(GROUP, BOB, text(2), roles)
    assert not m.receive(GROUP, CAROL, c.Edit(target=mid(2), text="forged"), roles)
    assert not m.receive(GROUP, CAROL, c.Delete(target=mid(2)), roles)
    assert m.receive(GROUP, BOB, c.Edit(target=mid(2), text="fixed"), roles)
    assert m.messages[(GROUP, mid(2))]["text"] == "fixed"


def test_a_deleted_message_is_not_edited_or_pinned_and_loses_its_reactions() -> None:
    m = Model()
    m.receive(BOB, BOB, text(1))
    m.receive(BOB, BOB, c.Reaction(target=mid(1), emoji="👍"))
    assert m.reactions
    m.receive(BOB, BOB, c.Delete(target=mid(1)))
    assert m.reactions == set() and m.messages[(BOB, mid(1))]["deleted"]
    assert not m.receive(BOB, BOB, c.Edit(target=mid(1), text="back"))
    assert not m.receive(BOB, BOB, c.Pin(target=mid(1)))
    # nor reacted to afterwards: a deleted message shows no new reactions
    assert not m.receive(BOB, BOB, c.Reaction(target=mid(1), emoji="🎉"))
    assert m.reactions == set()


def test_a_reaction_counts_once_per_reactor_and_emoji() -> None:
    m = Model()
    m.receive(BOB, BOB, text(1))
    assert m.receive(BOB, BOB, c.Reaction(target=mid(1), emoji="👍")).events == [
        MessageChanged(BOB, mid(1))]
    assert not m.receive(BOB, BOB, c.Reaction(target=mid(1), emoji="👍"))
    assert m.receive(BOB, BOB, c.Reaction(target=mid(1), emoji="👍", remove=True))
    assert not m.receive(BOB, BOB, c.Reaction(target=mid(1), emoji="👍", remove=True))


# --- groups racing posts ----------------------------------------------------------------


def test_only_admins_pin_in_a_group() -> None:
    m = Model()
    roles = group_of({BOB: MEMBER, CAROL: ADMIN})
    m.receive(GROUP, BOB, text(1), roles)
    assert not m.receive(GROUP, BOB, c.Pin(target=mid(1)), roles)
    assert m.receive(GROUP, CAROL, c.Pin(target=mid(1)), roles).writes == [
        SetPinned(GROUP, mid(1), True)]
    # carol demoted by a change that arrived first: her next pin no longer counts
    demoted = group_of({BOB: MEMBER, CAROL: MEMBER})
    assert not m.receive(GROUP, CAROL, c.Pin(target=mid(1), pinned=False), demoted)
    assert m.messages[(GROUP, mid(1))]["pinned"]


def test_a_removed_member_no_longer_sets_the_timer() -> None:
    m = Model()
    before = group_of({BOB: MEMBER, CAROL: MEMBER})
    assert m.receive(GROUP, CAROL, c.Timer(seconds=60), before).events == [
        ConversationChanged(GROUP)]
    after = group_of({BOB: MEMBER})  # carol removed; her timer change raced it
    assert not m.receive(GROUP, CAROL, c.Timer(seconds=1), after)
    assert m.timers[GROUP] == 60


def test_typing_shows_in_one_to_one_only() -> None:
    m = Model()
    assert m.receive(BOB, BOB, c.Typing(active=True)).events == [TypingChanged(BOB, True)]
    assert not m.receive(GROUP, BOB, c.Typing(active=True), group_of({BOB: MEMBER}))


# --- properties -------------------------------------------------------------------------

_ACTIONS = st.one_of(
    st.builds(lambda n: text(n), st.integers(1, 4)),
    st.builds(lambda n: c.Edit(target=mid(n), text=f"edit {n}"), st.integers(1, 4)),
    st.builds(lambda n: c.Delete(target=mid(n)), st.integers(1, 4)),
    st.builds(lambda n: c.Pin(target=mid(n)), st.integers(1, 4)),
    st.builds(lambda n, r: c.Reaction(target=mid(n), emoji="👍", remove=r),
              st.integers(1, 4), st.booleans()),
    st.builds(lambda n: c.Receipt(kind=c.READ, ids=[mid(n)], at=n), st.integers(1, 4)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ACTIONS, max_size=25))
def test_any_order_of_contents_keeps_the_rules(actions: list[c.Content]) -> None:
    """Whatever arrives in whatever order, twice: each message is added once, an event
    names only a message that exists, our own message never changes by a peer's edit or
    delete, and a status never moves backwards (the model asserts the last two)."""
    m = Model()
    m.sent(BOB, 4)  # one of ours among theirs
    added: list[bytes] = []
    for action in [*actions, *actions]:  # everything redelivered
        effects = m.receive(BOB, BOB, action)
        added += [r.id for r in effects.new]
        for event in effects.events:
            if isinstance(event, MessageChanged):
                assert (BOB, event.id) in m.messages
        assert m.messages[(BOB, mid(4))]["text"] == "mine 4"
    assert len(added) == len(set(added))
    assert mid(4) not in added


# --- the edge agrees with the model -------------------------------------------------------


async def _client(tmp_path: Path):  # type: ignore[no-untyped-def]
    from tenchat.client.service import Client

    secrets = Secrets(identity_seed=os.urandom(32), storage_key=os.urandom(32), handle=ME,
                      relay="ws://127.0.0.1:9")
    cache = await Cache.open(tmp_path, secrets.storage_key)
    client = Client(tmp_path, secrets.relay, secrets, cache, clock=lambda: NOW)
    await client.cache.call(lambda tx: tx.get_meta("x"))  # opened
    return client


@pytest.mark.asyncio
async def test_the_sqlite_edge_writes_what_the_model_does(tmp_path: Path) -> None:
    client = await _client(tmp_path)
    m = Model()
    try:
        mine = MessageRow(mid(4), BOB, True, "mine 4", 1, 1, SENT)
        m.sent(BOB, 4)
        async with client.cache.transaction():
            await client.cache.messages.add(mine, shown=True)
        script: list[c.Content] = [
            c.Edit(target=mid(1), text="too early"), text(1, "one"), text(1, "dup"),
            text(2, "two @alice"), c.Receipt(kind=c.DELIVERED, ids=[mid(4), mid(9)], at=1),
            c.Reaction(target=mid(1), emoji="👍"), c.Reaction(target=mid(1), emoji="👍"),
            c.Edit(target=mid(2), text="two, edited"), c.Edit(target=mid(4), text="forged"),
            c.Delete(target=mid(1)), c.Pin(target=mid(2)), c.Timer(seconds=30),
            c.Receipt(kind=c.READ, ids=[mid(4)], at=2),
            c.Receipt(kind=c.DELIVERED, ids=[mid(4)], at=3),
        ]
        for content in script:
            expected = m.receive(BOB, BOB, content)
            new: list[MessageRow] = []
            receipts: dict = {}  # type: ignore[type-arg]
            events: list = []  # type: ignore[type-arg]
            async with client.cache.transaction():
                await client.apply_content(BOB, BOB, content, None, new, receipts, events)
            assert [type(e) for e in events] == [type(e) for e in expected.events], content
            assert [r.id for r in new] == [r.id for r in expected.new]
        for (conv, msg_id), want in m.messages.items():
            row = await client.cache.messages.get(conv, msg_id)
            assert row is not None
            assert (row.text, row.status, row.deleted, row.pinned) == (
                want["text"], want["status"], want["deleted"], want["pinned"])
        assert await client.cache.conversations.timer(BOB) == m.timers[BOB]
        assert await client.cache.messages.reactions(BOB, [mid(1), mid(2)]) == {}
    finally:
        await client.close()
