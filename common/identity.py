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
    "relay_origin",
    "origin_authority",
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


_DEFAULT_PORTS: Final = {"ws": 80, "wss": 443}


def relay_origin(url: str) -> str:
    """The canonical origin of a relay URL: ``scheme://host[:port]`` as the client dialled
    it. Scheme and host lowercased, an IPv6 host in brackets, the port only when it is not
    the scheme's default (80 for ws, 443 for wss); path, query and fragment dropped.
    ValueError for anything that is not a ws:// or wss:// URL with a host."""
    from urllib.parse import urlsplit  # pure parsing, no I/O

    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a relay URL: {url[:80]!r} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"a relay URL starts with ws:// or wss://, not {url[:80]!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"a relay URL has no user name or password: {url[:80]!r}")
    host = _canonical_host((parts.hostname or "").lower(), url)
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")


def _ipv4(host: str) -> str | None:
    """A host whose last label is numeric is an IPv4 address in any inet_aton spelling
    (``127.1``, ``0x7f.0.0.1``, ``2130706433``): its dotted-quad form; ValueError if it is
    not a valid one; None for a name."""
    labels = host.split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    if not 1 <= len(labels) <= 4 or not all(_NUMERIC_LABEL.fullmatch(x) for x in labels):
        raise ValueError
    values = []
    for label in labels:
        if label.startswith("0x"):
            values.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            values.append(int(label, 8))
        else:
            values.append(int(label))
    if any(v > 255 for v in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise ValueError
    number = values[-1]
    for i, v in enumerate(values[:-1]):
        number += v << (8 * (3 - i))
    return ".".join(str((number >> shift) & 255) for shift in (24, 16, 8, 0))


def _canonical_host(host: str, url: str) -> str:
    """One spelling per host (security review L9): IDNA for a Unicode name, no trailing
    dot, dotted-quad IPv4, compressed IPv6; '%' (escapes, zone ids) refused."""
    import ipaddress  # pure

    bad = ValueError(f"no valid host in relay URL {url[:80]!r}")
    if not host or "%" in host:
        raise bad
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            raise bad from None
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise bad from None
    if not re.fullmatch(r"[a-z0-9._~!$&'()*+,;=-]+", host) or "" in host.split("."):
        raise bad  # an empty label too: IDNA turns U+2024 ONE DOT LEADER into a dot
    try:
        quad = _ipv4(host)
    except ValueError:
        raise bad from None
    return quad or host


def origin_authority(origin: str) -> str:
    """The ``host[:port]`` of a canonical origin (what a SIWE ``domain`` names)."""
    return origin.split("://", 1)[1]


def auth_message(origin: str, challenge: bytes) -> bytes:
    """What a client signs to authenticate: bound to the relay URL the client dialled (its
    canonical :func:`relay_origin`, never a name the relay announced) and this connection's
    challenge, so a relay cannot forward the signature to log in somewhere else."""
    return b"tenchat/auth/v2\x00" + origin.encode() + b"\x00" + challenge


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
