"""Safety numbers."""

from __future__ import annotations

import hashlib
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tenchat.common.crypto.keys import IdentityKey
from tenchat.common.crypto.safety import safety_number

key32 = st.binary(min_size=32, max_size=32)


@settings(max_examples=20)
@given(key32, key32)
def test_same_on_both_sides(a: bytes, b: bytes) -> None:
    assert safety_number(a, b) == safety_number(b, a)


def test_format_is_twelve_groups_of_five_digits() -> None:
    a, b = IdentityKey.generate().public, IdentityKey.generate().public
    assert re.fullmatch(r"\d{5}( \d{5}){11}", safety_number(a, b))


def test_differs_for_different_keys() -> None:
    a, b, c = (IdentityKey.generate().public for _ in range(3))
    assert safety_number(a, b) != safety_number(a, c)
    assert safety_number(a, b) != safety_number(c, b)
    # One half is each party's own 30 digits: a key change shows on both screens.
    ab, ac = safety_number(a, b).replace(" ", ""), safety_number(a, c).replace(" ", "")
    assert {ab[:30], ab[30:]} & {ac[:30], ac[30:]}


def test_known_answer() -> None:
    # Frozen so a change to the construction can't slip by: both users would see new digits.
    assert safety_number(bytes(32), bytes(range(32))) == (
        safety_number(bytes(range(32)), bytes(32))
    )
    assert safety_number(bytes(32), bytes(range(32))) == KNOWN


KNOWN = "08982 03458 10812 82365 31561 97617 69871 83431 08463 53182 11167 24730"


def _signal_half(key: bytes) -> str:
    """libsignal's NumericFingerprintGenerator.getDisplayStringFor, key = id = our user id."""
    digest = b"\x00\x00" + key + key  # shortToByteArray(FINGERPRINT_VERSION=0), key, identifier
    for _ in range(5200):
        digest = hashlib.sha512(digest + key).digest()
    chunks = [int.from_bytes(digest[i : i + 5], "big") % 100000 for i in range(0, 30, 5)]
    return "".join(f"{c:05d}" for c in chunks)


def test_matches_signals_numeric_fingerprint() -> None:
    a, b = IdentityKey.generate().public, IdentityKey.generate().public
    local, remote = _signal_half(a), _signal_half(b)
    expected = local + remote if local <= remote else remote + local
    assert safety_number(a, b).replace(" ", "") == expected
