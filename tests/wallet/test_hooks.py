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
