"""The features' message-like content rules (client/message_rules.py: a sticker, a gift),
driven directly: what becomes a chat message, once, with its receipt and its record."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenchat.client.events import MessageAdded
from tenchat.client.message_rules import (
    AddRow,
    KeepSticker,
    MessageFacts,
    TrackGift,
    apply_gift,
    apply_sticker,
    clean_name,
    sticker_text,
)
from tenchat.client.rules import Incoming
from tenchat.common import content as c
from tenchat.common.groups import MEMBER, GroupState

BOB, CAROL = b"b" * 32, b"c" * 32
GROUP = b"g" * 16
NOW = 9_000
STATE = GroupState(group=GROUP, version=1, roles={BOB: MEMBER, CAROL: MEMBER})


def mid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def sticker(n: int = 1, **kw: object) -> c.Sticker:
    return c.Sticker(id=mid(n), pack=b"p" * 32, key=b"k" * 32, index=0, sent_at=n,
                     **kw)  # type: ignore[arg-type]


def gift(n: int = 1) -> c.Gift:
    return c.Gift(id=mid(n), chain_id=31337, tx_hash=b"t" * 32, sent_at=n)


def test_a_sticker_is_a_message_with_its_content_kept() -> None:
    content = sticker(name="cat")
    out = apply_sticker(MessageFacts(NOW), Incoming(BOB, BOB, content))
    (add, keep) = out.writes
    assert isinstance(add, AddRow) and add.row.text == sticker_text("cat")
    assert add.row.sender is None and add.row.received_at == NOW
    assert keep == KeepSticker(BOB, mid(1), c.encode_content(content))
    assert out.receipts == [(BOB, None, mid(1))]
    assert out.events == [MessageAdded(add.row)] and out.new == [add.row]


def test_a_group_sticker_names_its_author_and_the_group_in_the_receipt() -> None:
    out = apply_sticker(MessageFacts(NOW), Incoming(GROUP, CAROL, sticker(), STATE))
    assert out.new[0].sender == CAROL and out.new[0].peer == GROUP
    assert out.receipts == [(CAROL, GROUP, mid(1))]


@pytest.mark.parametrize(("expires_in", "expires_at"), [(0, 0), (30, NOW + 30_000),
                                                        (1, NOW + 1000)])
def test_a_disappearing_sticker_expires_from_its_arrival(expires_in: int,
                                                         expires_at: int) -> None:
    out = apply_sticker(MessageFacts(NOW), Incoming(BOB, BOB, sticker(expires_in=expires_in)))
    assert out.new[0].expires_at == expires_at


def test_a_sticker_reply_keeps_what_it_answers() -> None:
    out = apply_sticker(MessageFacts(NOW), Incoming(BOB, BOB, sticker(reply_to=mid(9))))
    assert out.new[0].reply_to == mid(9)


@pytest.mark.parametrize(("name", "shown"), [
    ("cat", "cat"), ("", ""), ("a\nb\tc", "abc"), ("a   b", "a b"),
    ("  spaced  out ", "spaced out"),
    ("\x1b[31mred", "[31mred"), ("x" * 64, "x" * 64),
])
def test_a_sticker_name_is_cleaned_before_it_is_shown(name: str, shown: str) -> None:
    out = apply_sticker(MessageFacts(NOW), Incoming(BOB, BOB, sticker(name=name)))
    assert out.new[0].text == sticker_text(shown)


@given(st.text(max_size=64))
def test_a_cleaned_name_is_one_printable_line(name: str) -> None:
    cleaned = clean_name(name)
    assert cleaned.isprintable() and "\n" not in cleaned and len(cleaned) <= 64
    assert cleaned == cleaned.strip()


@pytest.mark.parametrize("rule", [apply_sticker, apply_gift])
def test_a_redelivered_content_is_a_duplicate(rule) -> None:  # type: ignore[no-untyped-def]
    content = sticker() if rule is apply_sticker else gift()
    assert not rule(MessageFacts(NOW, known=True), Incoming(BOB, BOB, content))


def test_a_gift_is_a_message_and_a_gift_to_settle_from_the_chain() -> None:
    out = apply_gift(MessageFacts(NOW), Incoming(BOB, BOB, gift()))
    (add, track) = out.writes
    assert isinstance(add, AddRow) and add.row.peer == BOB and "chain 31337" in add.row.text
    assert track == TrackGift(31337, b"t" * 32, BOB, mid(1), NOW)
    assert out.receipts == [(BOB, None, mid(1))]


def test_a_gift_in_a_group_is_ignored() -> None:
    assert not apply_gift(MessageFacts(NOW), Incoming(GROUP, BOB, gift(), STATE))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["sticker", "gift"]), st.integers(1, 6)),
                max_size=30))
def test_each_message_is_written_once_whatever_is_redelivered(
        script: list[tuple[str, int]]) -> None:
    """The edge reads ``known`` from what was written: each id becomes one message."""
    written: dict[bytes, str] = {}
    for kind, n in script:
        content = sticker(n) if kind == "sticker" else gift(n)
        rule = apply_sticker if kind == "sticker" else apply_gift
        out = rule(MessageFacts(NOW, known=mid(n) in written), Incoming(BOB, BOB, content))
        for w in out.writes:
            if isinstance(w, AddRow):
                assert w.row.id not in written
                written[w.row.id] = kind
    assert set(written) == {mid(n) for _, n in script}
