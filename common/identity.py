"""Identities, handles and the exact byte strings that identity keys sign.

A user id is the 32-byte Ed25519 public key of the identity. Each signed
statement has its own domain-separated message so a signature made for one
purpose can never be replayed as another.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from .errors import ErrorCode, ProtocolError

__all__ = [
    "HANDLE_RULE",
    "normalize_handle",
    "auth_message",
    "handle_message",
    "signed_prekey_message",
    "verify_signature",
    "fingerprint",
    "pow_prefix",
    "pow_ok",
    "solve_pow",
]

# ASCII only on purpose: no homoglyphs ("аlice" with a Cyrillic а), no normalisation games.
_HANDLE_RE: Final = re.compile(r"[a-z][a-z0-9_]{2,31}")
HANDLE_RULE: Final = "3-32 characters: a letter, then letters, digits or '_' (case-insensitive)"


def normalize_handle(text: str) -> str:
    """Canonical form of a handle (lowercase, no leading '@'); ProtocolError(bad_handle)."""
    handle = text[1:] if text.startswith("@") else text
    handle = handle.lower()
    if not _HANDLE_RE.fullmatch(handle):
        raise ProtocolError(ErrorCode.BAD_HANDLE, f"invalid handle {text[:40]!r}: {HANDLE_RULE}")
    return handle


def auth_message(relay: str, challenge: bytes) -> bytes:
    """What a client signs to authenticate: bound to this relay's name and this connection."""
    return b"tenchat/auth/v1\x00" + relay.encode() + b"\x00" + challenge


def handle_message(handle: str, user: bytes) -> bytes:
    """What an identity signs to claim a handle (``handle`` in canonical form)."""
    return b"tenchat/handle/v1\x00" + handle.encode() + b"\x00" + user


def signed_prekey_message(pub: bytes) -> bytes:
    """X3DH ``Encode(SPK)``: curve type byte 0x05 then the X25519 u-coordinate."""
    return b"\x05" + pub


POW_DOMAIN: Final = b"tenchat/pow/v1\x00"


def pow_prefix(challenge: bytes, user: bytes, handle: str) -> bytes:
    """What a registration's proof-of-work hashes before its nonce: bound to the
    connection (``challenge`` of its welcome), the identity and the canonical handle."""
    return POW_DOMAIN + challenge + user + handle.encode()


def leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def pow_ok(challenge: bytes, user: bytes, handle: str, nonce: bytes, bits: int) -> bool:
    """True if SHA-256(pow_prefix(...) || nonce) starts with ``bits`` zero bits."""
    if bits <= 0:
        return True
    digest = hashlib.sha256(pow_prefix(challenge, user, handle) + nonce).digest()
    return leading_zero_bits(digest) >= bits


def solve_pow(challenge: bytes, user: bytes, handle: str, bits: int) -> bytes:
    """The first nonce (an 8-byte big-endian counter from 0) that passes pow_ok: about
    2**bits hashes (20 bits: a second or two in CPython)."""
    if bits <= 0:
        return b""
    base = hashlib.sha256(pow_prefix(challenge, user, handle))
    for counter in range(2**64):
        nonce = counter.to_bytes(8, "big")
        h = base.copy()
        h.update(nonce)
        if leading_zero_bits(h.digest()) >= bits:
            return nonce
    raise AssertionError("unreachable")


def verify_signature(user: bytes, message: bytes, sig: bytes) -> bool:
    """True if ``sig`` is ``user``'s valid Ed25519 signature over ``message``."""
    try:
        VerifyKey(user).verify(message, sig)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def fingerprint(user: bytes) -> str:
    """Short human-readable form of a user id (hex, in groups of 4)."""
    h = user.hex()[:32]
    return " ".join(h[i : i + 4] for i in range(0, len(h), 4))
