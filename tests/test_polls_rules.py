"""The pure poll rules (common.polls) and the poll and sticker content types."""

from __future__ import annotations

import msgspec
import pytest

from tenchat.common import content as c
from tenchat.common.polls import replaces, tally, valid_choices, voters_by_option
from tenchat.common.stickers import StickerLinkError, make_link, parse_link


def test_valid_choices() -> None:
    assert valid_choices([1], 3, False)
    assert valid_choices([], 3, False)  # takes a vote back
    assert not valid_choices([3], 3, False)
    assert not valid_choices([0, 1], 3, False)
    assert valid_choices([0, 2], 3, True)
    assert not valid_choices([2, 2], 3, True)
    assert not valid_choices([-1], 3, True)


def test_tally_counts_each_voter_once_and_skips_invalid() -> None:
    votes = {b"a": [0, 2], b"b": [2], b"c": [7], b"d": []}
    assert tally(votes.values(), 3, True) == ([1, 0, 2], 2)
    assert tally(votes.values(), 3, False) == ([0, 0, 1], 1)
    assert voters_by_option(votes, 3, True) == [[b"a"], [], [b"a", b"b"]]


def test_later_vote_replaces() -> None:
    assert replaces(5, None) and replaces(5, 5) and replaces(6, 5)
    assert not replaces(4, 5)


def test_poll_content_limits() -> None:
    ok = c.Poll(id=b"p" * 16, question="q?", options=["a", "b"], sent_at=1)
    assert c.decode_content(c.encode_content(ok)) == ok
    for bad in ({"options": ["only"]}, {"options": ["x"] * 13}, {"question": ""}):
        fields = {"t": "poll", "id": b"p" * 16, "question": "q?", "options": ["a", "b"],
                  "sent_at": 1, **bad}
        with pytest.raises(msgspec.ValidationError):
            c.decode_content(msgspec.msgpack.encode(fields))
    with pytest.raises(msgspec.ValidationError):
        c.decode_content(msgspec.msgpack.encode(
            {"t": "vote", "poll": b"p" * 16, "choices": [12], "at": 1}))


def test_sticker_link_round_trip() -> None:
    link = make_link(b"\x01" * 32, b"\x02" * 32)
    assert link.startswith("tenchat://sticker/" + "01" * 32 + "#")
    assert parse_link(link) == (b"\x01" * 32, b"\x02" * 32)
    for bad in ("https://x/y", "tenchat://sticker/abc#def", link.replace("#", "?")):
        with pytest.raises(StickerLinkError):
            parse_link(bad)
