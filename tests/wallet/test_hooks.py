"""Event signatures for contract hooks (client.wallet.hooks): parsed, hashed, decoded."""

from __future__ import annotations

import pytest

from tenchat.client.wallet import WalletError
from tenchat.client.wallet.evm import TRANSFER_TOPIC
from tenchat.client.wallet.hooks import decode_log, parse_event


def test_event_signature_and_decoding() -> None:
    spec = parse_event("Transfer(address indexed from, address indexed to, uint256 value)")
    assert spec.signature == "Transfer(address,address,uint256)"
    assert spec.topic == TRANSFER_TOPIC
    a, b = "0x" + "11" * 20, "0x" + "22" * 20
    log = {"topics": [spec.topic, bytes(12) + bytes.fromhex(a[2:]),
                      bytes(12) + bytes.fromhex(b[2:])],
           "data": (5).to_bytes(32, "big")}
    assert decode_log(spec, log) == {"from": a, "to": b, "value": "5"}
    assert parse_event("Ping()").params == []


@pytest.mark.parametrize("text", ["Transfer", "Transfer(address indexed indexed x)", "(x)"])
def test_bad_event_signatures(text: str) -> None:
    with pytest.raises(WalletError):
        parse_event(text)


def test_a_log_of_another_shape_is_refused_as_such() -> None:
    """An ERC-721 Transfer has the ERC-20 Transfer's topic but its token id is a fourth
    topic and its data is empty; a log with too few topics is no Transfer either."""
    from tenchat.client.wallet.hooks import OtherShape

    spec = parse_event("Transfer(address indexed from, address indexed to, uint256 value)")
    a, b = bytes(12) + b"\x11" * 20, bytes(12) + b"\x22" * 20
    erc721 = {"topics": [spec.topic, a, b, (7).to_bytes(32, "big")], "data": b""}
    short = {"topics": [spec.topic, a], "data": (5).to_bytes(32, "big")}
    bad_data = {"topics": [spec.topic, a, b], "data": b"\x01"}
    for log in (erc721, short, bad_data):
        with pytest.raises(OtherShape):
            decode_log(spec, log)
