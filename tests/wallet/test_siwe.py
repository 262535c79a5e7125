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


# --- the grammar's and the signature's edges the shared vectors don't reach -------------

ADDRESS = "0x9D85ca56217D2bb651b00f15e694EB7E713637D4"
GOOD = dict(domain="relay.example:443", address=ADDRESS, uri="tenchat:link", chain_id=1,
            nonce="abcdefgh12", issued_at="2026-01-01T00:00:00Z")


@pytest.mark.parametrize(("field", "value"), [
    ("scheme", "1https"),  # a scheme starts with a letter
    ("domain", ""), ("domain", "relay example"),
    ("address", ADDRESS.lower()),  # not EIP-55
    ("statement", "two\nlines"), ("statement", "a tab\there"),
    ("uri", "no scheme"), ("version", "2"),
    ("chain_id", 0), ("chain_id", True), ("chain_id", "1"),
    ("nonce", "short"), ("nonce", "has space1"),
    ("issued_at", "2026-02-30T00:00:00Z"),  # no such day
    ("issued_at", "2026-01-01T00:00:00+24:00"),  # an offset's hours are < 24
    ("expiration_time", "tomorrow"),
    ("request_id", "a b"), ("resources", ["not a uri"]),
])
def test_a_field_outside_the_grammar_is_malformed(field: str, value: object) -> None:
    with pytest.raises(siwe.MalformedMessage):
        siwe.SiweMessage(**{**GOOD, field: value})  # type: ignore[arg-type]


def test_every_optional_field_round_trips_through_the_text() -> None:
    msg = siwe.SiweMessage(**GOOD, statement="Sign in", scheme="https",  # type: ignore[arg-type]
                           expiration_time="2026-01-02T00:00:00.5+01:30",
                           not_before="2026-01-01T00:00:00Z", request_id="req-1",
                           resources=["https://a.example/x", "ipfs://b"])
    assert siwe.parse(msg.text()) == msg
    assert siwe.parse_datetime(msg.expiration_time or "") == datetime(
        2026, 1, 1, 22, 30, 0, 500000, tzinfo=UTC)


@pytest.mark.parametrize("fields", [{}, {"chainId": "one"}, {"resources": 5}])
def test_from_fields_reports_a_missing_or_bad_field(fields: dict) -> None:
    base = {"domain": "relay.example", "address": ADDRESS, "uri": "tenchat:link",
            "chainId": 1, "nonce": "abcdefgh12", "issuedAt": "2026-01-01T00:00:00Z"}
    with pytest.raises(siwe.MalformedMessage, match="missing or bad field"):
        siwe.SiweMessage.from_fields({**base, **fields} if fields else {"domain": "x"})


def test_parse_refuses_text_that_is_not_a_siwe_message() -> None:
    text = siwe.SiweMessage(**GOOD).text()  # type: ignore[arg-type]
    lines = text.split("\n")
    for bad in ("a\nb\nc",  # too short
                "\n".join(["evil.example wants you to log in:"] + lines[1:]),  # preamble
                "\n".join(lines[:2] + ["not empty"] + lines[2:]),  # after the address
                text.replace("Chain ID: 1", "Chain ID: 0x1"),
                text + "\ntrailing"):
        with pytest.raises(siwe.MalformedMessage):
            siwe.parse(bad)


def test_to_checksum_address_refuses_what_is_not_an_address() -> None:
    assert siwe.to_checksum_address(bytes.fromhex(ADDRESS[2:])) == ADDRESS
    for bad in (b"\x00" * 19, "0x1234", "0x" + "g" * 40):
        with pytest.raises(ValueError):
            siwe.to_checksum_address(bad)
    assert not siwe.is_checksum_address("9D85ca56217D2bb651b00f15e694EB7E713637D4")


def test_a_signature_out_of_range_or_unrecoverable_is_invalid() -> None:
    digest = siwe.eip191_hash(b"m")
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    one = (1).to_bytes(32, "big")
    for bad in (b"\x01" * 64,  # 64 bytes
                bytes(32) + one + b"\x1b",  # r = 0
                one + n.to_bytes(32, "big") + b"\x1b",  # s = n
                one + one + b"\x02"):  # v neither 0/1 nor 27/28
        with pytest.raises(siwe.InvalidSignature):
            siwe.recover_address(digest, bad)
    # in range, but r is no point's x-coordinate (x = 5 is not on secp256k1)
    with pytest.raises(siwe.InvalidSignature, match="no key recovers"):
        siwe.recover_address(digest, (5).to_bytes(32, "big") + one + b"\x1b")
    for text in ("0x12", "12" * 65, "0x" + "zz" * 65):
        with pytest.raises(siwe.InvalidSignature):
            siwe.parse_signature(text)
