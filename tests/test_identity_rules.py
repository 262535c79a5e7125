"""common.identity: handles, the registration proof-of-work, signatures (pure rules)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from tenchat.common.errors import ProtocolError
from tenchat.common.identity import (
    fingerprint,
    leading_zero_bits,
    normalize_handle,
    pow_ok,
    pow_prefix,
    solve_pow,
    verify_signature,
)

CHALLENGE = bytes(range(32))
USER = bytes(32)


@pytest.mark.parametrize(("text", "handle"), [
    ("alice", "alice"), ("@Alice", "alice"), ("a_1", "a_1"), ("B" + "x" * 31, "b" + "x" * 31),
])
def test_a_handle_has_one_canonical_form(text: str, handle: str) -> None:
    assert normalize_handle(text) == handle


@pytest.mark.parametrize("text", [
    "", "@", "al", "1alice", "_alice", "alice!", "a" * 33, "аlice",  # Cyrillic а
    "@@alice", "ali ce",
])
def test_a_bad_handle_is_refused_with_bad_handle(text: str) -> None:
    with pytest.raises(ProtocolError) as err:
        normalize_handle(text)
    assert err.value.code == "bad_handle"


@given(st.binary(max_size=8))
def test_leading_zero_bits_counts_from_the_most_significant_bit(data: bytes) -> None:
    bits = leading_zero_bits(data)
    as_int = int.from_bytes(data, "big")
    assert bits == len(data) * 8 - as_int.bit_length()


@pytest.mark.parametrize("bits", [1, 4, 9])
def test_a_solved_proof_of_work_passes_and_binds_its_inputs(bits: int) -> None:
    nonce = solve_pow(CHALLENGE, USER, "alice", bits)
    assert pow_ok(CHALLENGE, USER, "alice", nonce, bits)
    digest = hashlib.sha256(pow_prefix(CHALLENGE, USER, "alice") + nonce).digest()
    assert leading_zero_bits(digest) >= bits
    # the first such nonce: every smaller counter fails
    first = int.from_bytes(nonce, "big")
    assert not any(pow_ok(CHALLENGE, USER, "alice", n.to_bytes(8, "big"), bits)
                   for n in range(first))


def test_a_proof_of_work_is_bound_to_challenge_user_and_handle() -> None:
    bits = 12
    nonce = solve_pow(CHALLENGE, USER, "alice", bits)
    # some other input fails with this nonce: with 12 bits, 3 misses are ~1 in 2**36 unlucky
    others = [(bytes(32), USER, "alice"), (CHALLENGE, b"\x01" * 32, "alice"),
              (CHALLENGE, USER, "alicf")]
    assert not all(pow_ok(c, u, h, nonce, bits) for c, u, h in others)


def test_no_proof_of_work_asked_is_no_work() -> None:
    assert solve_pow(CHALLENGE, USER, "alice", 0) == b""
    assert pow_ok(CHALLENGE, USER, "alice", b"", 0)
    assert pow_ok(CHALLENGE, USER, "alice", b"anything", -1)


def test_verify_signature_is_false_for_anything_but_a_valid_signature() -> None:
    key = SigningKey.generate()
    user, sig = bytes(key.verify_key), key.sign(b"m").signature
    assert verify_signature(user, b"m", sig)
    assert not verify_signature(user, b"n", sig)
    assert not verify_signature(user, b"m", sig[:63])  # short signature
    assert not verify_signature(user[:31], b"m", sig)  # short key
    assert not verify_signature(bytes(SigningKey.generate().verify_key), b"m", sig)


def test_fingerprint_is_the_first_16_bytes_in_groups_of_four_hex_digits() -> None:
    assert fingerprint(bytes(range(32))) == (
        "0001 0203 0405 0607 0809 0a0b 0c0d 0e0f")
