"""EIP-4361 parsing and verification (common.siwe) against every SIWE test vector
(tests/wallet/vectors/siwe)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tenchat.common import siwe

HERE = Path(__file__).resolve().parent


# The SIWE test vectors, a copy kept in the repository (see vectors/siwe).
VECTORS = HERE / "vectors" / "siwe"


def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def test_the_copy_here_matches_the_shared_vectors() -> None:
    for name in ("parsing_positive", "parsing_negative", "verification_positive",
                 "verification_negative"):
        assert load(f"{name}.json") == json.loads(
            (HERE / "vectors" / "siwe" / f"{name}.json").read_text())


_FIELD = {"domain": "domain", "address": "address", "statement": "statement", "uri": "uri",
          "version": "version", "chainId": "chain_id", "nonce": "nonce",
          "issuedAt": "issued_at", "expirationTime": "expiration_time",
          "notBefore": "not_before", "requestId": "request_id", "resources": "resources",
          "scheme": "scheme"}


@pytest.mark.parametrize("case", sorted(load("parsing_positive.json")))
def test_parsing_positive(case: str) -> None:
    vector = load("parsing_positive.json")[case]
    msg = siwe.parse(vector["message"])
    for key, value in vector["fields"].items():
        assert getattr(msg, _FIELD[key]) == value, key
    assert msg.text() == vector["message"]  # the text round-trips exactly


@pytest.mark.parametrize("case", sorted(load("parsing_negative.json")))
def test_parsing_negative(case: str) -> None:
    with pytest.raises(siwe.MalformedMessage):
        siwe.parse(load("parsing_negative.json")[case])


def _now(vector: dict) -> datetime:
    return siwe.parse_datetime(vector["time"]) if "time" in vector else datetime.now(UTC)


@pytest.mark.parametrize("case", sorted(load("verification_positive.json")))
def test_verification_positive(case: str) -> None:
    vector = load("verification_positive.json")[case]
    msg = siwe.SiweMessage.from_fields(vector)
    assert siwe.parse(msg.text()) == msg
    siwe.verify(msg, siwe.parse_signature(vector["signature"]), now=_now(vector))


@pytest.mark.parametrize("case", sorted(load("verification_negative.json")))
def test_verification_negative(case: str) -> None:
    vector = load("verification_negative.json")[case]
    with pytest.raises(siwe.SiweError):
        msg = siwe.SiweMessage.from_fields(vector)
        siwe.verify(msg, siwe.parse_signature(vector["signature"]), now=_now(vector),
                    domain=vector.get("domainBinding"), nonce=vector.get("matchNonce"))


def test_each_negative_fails_for_its_own_reason() -> None:
    vectors = load("verification_negative.json")
    expect = {"expired message": siwe.Expired, "domain binding": siwe.DomainMismatch,
              "custom time": siwe.Expired, "custom nonce": siwe.NonceMismatch,
              "malformed signature": siwe.InvalidSignature,
              "wrong signature": siwe.InvalidSignature, "not yet valid": siwe.NotYetValid,
              "invalid issuedAt": siwe.MalformedMessage,
              "invalid notBefore": siwe.MalformedMessage,
              "invalid expirationTime": siwe.MalformedMessage}
    assert set(expect) == set(vectors)
    for case, error in expect.items():
        vector = vectors[case]
        with pytest.raises(error):
            msg = siwe.SiweMessage.from_fields(vector)
            siwe.verify(msg, siwe.parse_signature(vector["signature"]), now=_now(vector),
                        domain=vector.get("domainBinding"), nonce=vector.get("matchNonce"))


def test_checksum_addresses() -> None:
    a = "0x9D85ca56217D2bb651b00f15e694EB7E713637D4"
    assert siwe.to_checksum_address(a.lower()) == a
    assert siwe.is_checksum_address(a)
    assert not siwe.is_checksum_address(a.lower())


def test_a_high_s_twin_of_a_valid_signature_is_refused() -> None:
    """(r, n - s) with v flipped recovers the same address: a second valid-looking
    signature for one message. Only the low-s form (EIP-2) is accepted (issue 21, item 5)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    from tenchat.common import wallets as w

    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    account = Account.create()
    now = datetime.now(UTC)
    msg = w.auth_siwe("ws://test-relay", account.address, bytes(32), now)
    text = msg.text()
    sig = bytes(Account.sign_message(encode_defunct(text=text), account.key).signature)
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    assert s <= n // 2  # what wallets make
    siwe.verify(msg, sig, now=now)
    twin = r + (n - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    digest = siwe.eip191_hash(text.encode())
    with pytest.raises(siwe.InvalidSignature, match="high-s"):
        siwe.recover_address(digest, twin)
    with pytest.raises(siwe.InvalidSignature, match="high-s"):
        siwe.verify(msg, twin, now=now)
