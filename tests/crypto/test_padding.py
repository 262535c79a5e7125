"""Padding of end-to-end payloads (common/padding.py; issue 12, item 10): pure."""

from __future__ import annotations

import os

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenchat.common import content as c
from tenchat.common.crypto.keys import IdentityKey, make_signed_prekey
from tenchat.common.crypto.session import Session
from tenchat.common.padding import MIN_PADDED, PadError, pad, padded_size, padme, unpad


def test_padme_matches_the_paper() -> None:
    # PURBs paper, Table/Algorithm 1: E = floor(log2 L), S = floor(log2 E) + 1, the low
    # E - S bits are rounded up.
    assert [padme(n) for n in (0, 1, 2, 3, 9, 100, 1000, 65_537)] == [
        0, 1, 2, 3, 10, 104, 1024, 67_584]
    for n in range(2, 200_000, 997):
        assert n <= padme(n) <= n * 1.125 + 1  # at most ~12 % larger


def test_receipt_and_short_text_are_one_size() -> None:
    receipt = c.encode_content(c.Receipt(kind=c.DELIVERED, ids=[os.urandom(16)],
                                         at=1_700_000_000_000))
    text = c.encode_content(c.Text(id=os.urandom(16), text="ok", sent_at=1_700_000_000_000))
    typing = c.encode_content(c.Typing(active=True))
    assert len(receipt) != len(text)  # what a relay could tell apart before
    assert len(pad(receipt)) == len(pad(text)) == len(pad(typing)) == MIN_PADDED

    # ... and so are the ciphertexts, on one session, as the relay sees them.
    bob, alice = IdentityKey.generate(), IdentityKey.generate()
    spk = make_signed_prekey(bob, 1)
    session = Session.initiate(alice, bob.public, 1, spk.public, spk.sig, None, None)
    sizes = {len(session.encrypt(pad(p))) for p in (receipt, text, typing)}
    assert len(sizes) == 1


_contents = st.one_of(
    st.builds(c.Text, id=st.binary(min_size=16, max_size=16), text=st.text(max_size=3000),
              sent_at=st.integers(0, 2**63 - 1),
              reply_to=st.none() | st.binary(min_size=16, max_size=16)),
    st.builds(c.Receipt, kind=st.sampled_from([c.DELIVERED, c.READ]),
              ids=st.lists(st.binary(min_size=16, max_size=16), max_size=300),
              at=st.integers(0, 2**63 - 1)),
    st.builds(c.Typing, active=st.booleans()),
)


@given(_contents)
def test_padding_round_trips(content: c.Content) -> None:
    plain = c.encode_content(content)
    padded = pad(plain)
    assert len(padded) == padded_size(len(plain)) >= max(MIN_PADDED, len(plain))
    assert c.decode_content(padded) == content  # receivers simply drop the "pad" key
    assert unpad(padded) == plain
    assert unpad(plain) == plain  # an old, unpadded payload is left as it is
    assert pad(padded) == padded  # never padded twice
    zeros = msgspec.msgpack.decode(padded)["pad"]
    assert zeros == bytes(len(zeros))


@given(st.dictionaries(st.text(max_size=8).filter(lambda k: k != "pad"),
                       st.binary(max_size=600) | st.integers(-(2**63), 2**64 - 1)
                       | st.text(max_size=50),
                       max_size=40))
def test_any_map_pads_to_its_bucket_and_back(value: dict[str, object]) -> None:
    plain = msgspec.msgpack.encode(value)
    padded = pad(plain)
    assert len(padded) == padded_size(len(plain))
    decoded = msgspec.msgpack.decode(padded)
    zeros = decoded.pop("pad")
    assert zeros == bytes(len(zeros))
    assert decoded == value
    assert unpad(padded) == plain


def test_only_maps_are_padded() -> None:
    for bad in (b"", msgspec.msgpack.encode([1, 2]), b"\xc0"):
        with pytest.raises(PadError):
            pad(bad)


def test_a_map_of_more_than_65535_entries_unpads_to_a_map32_header() -> None:
    value = {str(i): 0 for i in range(70_000)}
    plain = msgspec.msgpack.encode(value)
    assert plain[0] == 0xDF  # map32, as encoders write it for this many entries
    padded = pad(plain)
    assert unpad(padded) == plain and msgspec.msgpack.decode(padded)["pad"]


def test_a_pad_entry_that_does_not_fill_the_rest_is_no_pad_entry() -> None:
    padded = pad(msgspec.msgpack.encode({"a": 1}))
    # the declared zeros end before the payload does: content after them, not padding
    extended = padded + b"\x00"
    assert unpad(extended) == extended
    nonzero = padded[:-1] + b"\x01"  # the last "zero" is not one
    assert unpad(nonzero) == nonzero


def test_content_with_a_string_that_is_not_utf8_is_a_decode_error() -> None:
    good = c.encode_content(c.Text(id=bytes(16), text="hi", sent_at=1))
    bad = good.replace(b"\xa2hi", b"\xa2\xff\xfe")
    assert bad != good
    with pytest.raises(msgspec.DecodeError, match="UTF-8"):
        c.decode_content(bad)
