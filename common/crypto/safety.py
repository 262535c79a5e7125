"""Safety numbers: 60 digits both parties compare to check they hold each other's real key.

Signal's numeric fingerprint (version 0): for each party,
``h = SHA-512(h || key)`` iterated 5200 times from ``h = 0x0000 || key || id``, where
``key`` and ``id`` are both the 32-byte Ed25519 identity key (the user id). The first 30
bytes give 30 digits (six 5-byte big-endian chunks, each mod 100000). The two halves
are put in ascending order, so both parties see the same 60 digits.
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = ["safety_number", "FINGERPRINT_VERSION", "ITERATIONS"]

FINGERPRINT_VERSION: Final = 0
ITERATIONS: Final = 5200


def _half(identity: bytes) -> str:
    h = FINGERPRINT_VERSION.to_bytes(2, "big") + identity + identity
    for _ in range(ITERATIONS):
        h = hashlib.sha512(h + identity).digest()
    return "".join(
        f"{int.from_bytes(h[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5)
    )


def safety_number(my_identity: bytes, peer_identity: bytes) -> str:
    """The 60-digit safety number of two identities, as 12 groups of 5 digits."""
    if len(my_identity) != 32 or len(peer_identity) != 32:
        raise ValueError("identity keys are 32 bytes")
    digits = "".join(sorted((_half(my_identity), _half(peer_identity))))
    return " ".join(digits[i : i + 5] for i in range(0, 60, 5))
