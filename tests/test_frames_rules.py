"""common.frames: how an undecodable frame is classified (the error code the relay
answers with, docs/protocol.md) and which request id the error can still name."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenchat.common import frames as f
from tenchat.common.errors import ProtocolError

enc = msgspec.msgpack.encode
# An array nested deeper than the decoder's recursion limit (1,000 levels by default). Not
# deeper: eth-account (py_ecc) raises the limit to 100,000 in a process that imports it,
# and a frame nested that deep then overflows the C stack instead of raising.
DEEP = b"\x91" * 5_000 + b"\xc0"


@pytest.mark.parametrize(("data", "code", "rid"), [
    (enc({"t": "send", "id": 5}), "malformed", 5),  # a known type missing its fields
    (enc({"t": "no_such_frame", "id": 7}), "unknown_type", 7),
    (enc({"id": 3}), "malformed", 3),  # no type at all
    (enc({"t": 5, "id": 3}), "malformed", 3),
    (enc([1, 2]), "malformed", None),  # not a map
    (b"\xa1\xff", "malformed", None),  # a str that is not UTF-8
    (b"\xc1", "malformed", None),  # not MessagePack
    (DEEP, "malformed", None),
], ids=["missing_fields", "unknown_type", "no_type", "type_not_str", "not_a_map",
        "not_utf8", "not_msgpack", "nested_too_deep"])
def test_an_undecodable_request_gets_its_code_and_keeps_its_id(
        data: bytes, code: str, rid: int | None) -> None:
    with pytest.raises(ProtocolError) as err:
        f.decode_request(data)
    assert err.value.code == code
    assert f.peek_id(data) == rid


@pytest.mark.parametrize("rid", [-1, 2**53 + 1, True, "5", 1.0])
def test_an_id_out_of_range_or_of_another_type_is_not_named(rid: object) -> None:
    assert f.peek_id(enc({"t": "send", "id": rid})) is None


def test_a_relay_frame_of_an_unknown_type_is_malformed_for_the_client() -> None:
    # a client has no "unknown_type" to answer with: anything it can't read is malformed
    for data in (enc({"t": "no_such_frame"}), b"\xc1", DEEP, enc({"t": "welcome"})):
        with pytest.raises(ProtocolError) as err:
            f.decode_reply(data)
        assert err.value.code == "malformed"


@given(st.integers(min_value=0, max_value=2**53))
def test_every_request_round_trips_its_id(rid: int) -> None:
    frame = f.Ack(id=rid, seqs=[1, 2])
    assert f.decode_request(f.encode(frame)) == frame
    assert f.peek_id(f.encode(frame)) == rid
