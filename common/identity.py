"""Identities, handles and the exact byte strings that identity keys sign.

A user id is the 32-byte Ed25519 public key of the identity. Each signed
statement has its own domain-separated message so a signature made for one
purpose can never be replayed as another.
"""

from __future__ import annotations

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
