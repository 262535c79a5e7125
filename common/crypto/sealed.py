"""Sealed sender: the outer envelope layer of a 1:1 message that hides its sender from
the relay (docs/crypto.md "Sealed sender"), and the access keys that let only a
recipient's contacts use it.

The construction is Signal's sealed sender v1: an ephemeral X25519 key to the
recipient's identity key hides the sender's identity key; a second layer keyed by the
static DH of the sender's and the recipient's identity keys carries the inner envelope
(the Double Ratchet envelope, unchanged) and proves to the recipient that the holder of
that identity key sealed it. The recipient then checks that the inner envelope decrypts
on its session with that same identity (client/sealed.py): the ratchet's associated data
binds both identity keys too.

Pure: no I/O. Multi-device fan-out or any other envelope change stays inside ``inner``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

import msgspec

from .errors import CryptoError, InvalidEnvelope
from .keys import IdentityKey, X25519KeyPair
from .primitives import XChaCha20Poly1305, hkdf_sha256, x25519

__all__ = [
    "SEALED_SENDER", "Unsealed", "seal", "unseal", "access_key", "access_verifier",
    "access_ok", "sealed_queue_id", "PROFILE_KEY_LEN", "ACCESS_KEY_LEN",
]

# The `sender` the relay puts in a `msg` push of a sealed message: 32 zero bytes, which
# is no one's identity key (a point of small order, which libsodium refuses).
SEALED_SENDER: Final = bytes(32)
PROFILE_KEY_LEN: Final = 32
ACCESS_KEY_LEN: Final = 16

_EPH_INFO: Final = b"tenchat/sealed/v1/ephemeral"
_STATIC_INFO: Final = b"tenchat/sealed/v1/static"
_AEAD: Final = XChaCha20Poly1305(b"tenchat/sealed/v1/aead")
_ACCESS_INFO: Final = b"tenchat/access-key/v1"
_VERIFIER_PREFIX: Final = b"tenchat/access-verifier/v1"
_QUEUE_ID_PREFIX: Final = b"tenchat/sealed-queue-id/v1"


class _Outer(msgspec.Struct, forbid_unknown_fields=False):
    t: str
    v: int
    e: bytes  # the ephemeral X25519 public key
    s: bytes  # the sender's identity key, encrypted (layer 1)
    c: bytes  # the inner map, encrypted (layer 2)


class _Inner(msgspec.Struct, forbid_unknown_fields=False):
    msg: bytes  # the relay message id the sender used: checked against the outer send
    env: bytes  # the 1:1 envelope (docs/crypto.md "Envelopes")


class Unsealed(msgspec.Struct, frozen=True):
    sender: bytes  # the sender's Ed25519 identity key, proven by the static layer
    msg: bytes
    envelope: bytes


def _layers(eph_shared: bytes, recipient_x: bytes, eph_pub: bytes) -> tuple[bytes, bytes]:
    okm = hkdf_sha256(eph_shared, salt=recipient_x + eph_pub, info=_EPH_INFO, length=64)
    return okm[:32], okm[32:]  # chain key, layer-1 key


def _static_key(static_shared: bytes, chain: bytes, sealed_sender: bytes) -> bytes:
    return hkdf_sha256(static_shared, salt=chain + sealed_sender, info=_STATIC_INFO, length=32)


def seal(identity: IdentityKey, recipient: bytes, msg: bytes, envelope: bytes) -> bytes:
    """The sealed envelope of ``envelope`` (sent with relay message id ``msg``) from
    ``identity`` to the identity key ``recipient``."""
    recipient_x = IdentityKey.x25519_public(recipient)
    eph = X25519KeyPair.generate()
    chain, key1 = _layers(x25519(eph.private, recipient_x), recipient_x, eph.public)
    sealed_sender = _AEAD.encrypt(key1, identity.public, eph.public)
    key2 = _static_key(x25519(identity.x25519_private(), recipient_x), chain, sealed_sender)
    inner = msgspec.msgpack.encode(_Inner(msg=msg, env=envelope))
    body = _AEAD.encrypt(key2, inner, eph.public + recipient)
    return msgspec.msgpack.encode(_Outer(t="sealed", v=1, e=eph.public, s=sealed_sender,
                                         c=body))


def unseal(identity: IdentityKey, sealed: bytes) -> Unsealed:
    """Open a sealed envelope addressed to ``identity``: the sender's identity key (proven
    by the static DH layer), the message id and the inner envelope. InvalidEnvelope if it
    is not one; DecryptionFailed if either layer does not authenticate."""
    try:
        outer = msgspec.msgpack.decode(sealed, type=_Outer)
    except msgspec.MsgspecError:
        raise InvalidEnvelope("not a sealed envelope") from None
    if outer.t != "sealed" or outer.v != 1 or len(outer.e) != 32:
        raise InvalidEnvelope("not a sealed envelope of version 1")
    me_x = identity.x25519_private()
    recipient_x = IdentityKey.x25519_public(identity.public)
    chain, key1 = _layers(x25519(me_x, outer.e), recipient_x, outer.e)
    sender = _AEAD.decrypt(key1, outer.s, outer.e)
    if len(sender) != 32:
        raise InvalidEnvelope("the sealed sender is not an identity key")
    key2 = _static_key(x25519(me_x, IdentityKey.x25519_public(sender)), chain, outer.s)
    inner_bytes = _AEAD.decrypt(key2, outer.c, outer.e + identity.public)
    try:
        inner = msgspec.msgpack.decode(inner_bytes, type=_Inner)
    except msgspec.MsgspecError:
        raise InvalidEnvelope("the sealed content is not an inner envelope") from None
    return Unsealed(sender=sender, msg=inner.msg, envelope=inner.env)


def access_key(profile_key: bytes) -> bytes:
    """The 16-byte access key derived from a profile key: a sealed message to its owner
    must carry it (unless the owner accepts sealed messages from anyone)."""
    if len(profile_key) != PROFILE_KEY_LEN:
        raise CryptoError("a profile key is 32 bytes")
    return hkdf_sha256(profile_key, salt=b"", info=_ACCESS_INFO, length=ACCESS_KEY_LEN)


def access_verifier(access: bytes) -> bytes:
    """What the owner registers with the relay: SHA-256 of the access key (domain
    separated), so the relay's files do not hold the key itself."""
    return hashlib.sha256(_VERIFIER_PREFIX + access).digest()


def access_ok(access: bytes, verifier: bytes) -> bool:
    """Constant-time check of an access key against a registered verifier."""
    return hmac.compare_digest(access_verifier(access), verifier)


def sealed_queue_id(recipient: bytes, msg: bytes) -> bytes:
    """The 16-byte id a sealed message is queued (and deduplicated) under: bound to the
    recipient and the sender's message id, never to the sender."""
    return hashlib.sha256(_QUEUE_ID_PREFIX + recipient + msg).digest()[:16]
