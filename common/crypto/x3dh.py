"""X3DH key agreement (Signal spec) with an Ed25519 identity key converted to X25519.

    DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)   DH4 = DH(EK_A, OPK_B)
    SK  = HKDF-SHA256(salt = 32 zero bytes, ikm = 0xFF * 32 || DH1 || DH2 || DH3 [|| DH4],
                      info = "tenchat/x3dh/v1", length = 32)
    AD  = Encode(IK_A) || Encode(IK_B)

``Encode(IK)`` is the 32-byte Ed25519 public key itself (the user id), not its X25519
conversion: the conversion drops the sign bit, so it is two-to-one, and AD must bind
the exact identities. ``Encode(SPK)`` (what the identity signs) is ``0x05 || SPK``.
"""

from __future__ import annotations

from typing import NamedTuple

from ..identity import signed_prekey_message, verify_signature
from .errors import CryptoError, InvalidSignature
from .keys import IdentityKey, X25519KeyPair
from .primitives import X3DH_INFO, hkdf_sha256, x25519

__all__ = ["InitiatorResult", "ResponderResult", "encode_identity", "initiate", "respond"]

_F = b"\xff" * 32  # the spec's F: 32 0xFF bytes, so the input is never a valid scalar alone


class InitiatorResult(NamedTuple):
    shared_key: bytes  # SK, 32 bytes
    associated_data: bytes  # AD = Encode(IK_A) || Encode(IK_B), 64 bytes
    ephemeral_pub: bytes  # EK_A public, sent to the responder


class ResponderResult(NamedTuple):
    shared_key: bytes
    associated_data: bytes


def encode_identity(ed25519_pub: bytes) -> bytes:
    """X3DH ``Encode(IK)``: the raw 32-byte Ed25519 public key."""
    return bytes(ed25519_pub)


def _kdf(dhs: list[bytes]) -> bytes:
    return hkdf_sha256(_F + b"".join(dhs), salt=b"", info=X3DH_INFO, length=32)


def _check_len(value: bytes | None, what: str) -> None:
    if value is not None and len(value) != 32:
        raise CryptoError(f"{what} must be 32 bytes")


def initiate(
    identity: IdentityKey,
    peer_identity: bytes,
    spk_pub: bytes,
    spk_sig: bytes,
    otk_pub: bytes | None,
) -> InitiatorResult:
    """Alice's side: verify Bob's signed prekey and derive SK from a fresh ephemeral key.

    Raises InvalidSignature if ``spk_sig`` is not ``peer_identity``'s signature over
    ``0x05 || spk_pub``.
    """
    _check_len(peer_identity, "peer identity")
    _check_len(spk_pub, "signed prekey")
    _check_len(otk_pub, "one-time prekey")
    if not verify_signature(peer_identity, signed_prekey_message(spk_pub), spk_sig):
        raise InvalidSignature("the signed prekey's signature does not verify")
    peer_ik = IdentityKey.x25519_public(peer_identity)
    ek = X25519KeyPair.generate()
    dhs = [
        x25519(identity.x25519_private(), spk_pub),
        x25519(ek.private, peer_ik),
        x25519(ek.private, spk_pub),
    ]
    if otk_pub is not None:
        dhs.append(x25519(ek.private, otk_pub))
    ad = encode_identity(identity.public) + encode_identity(peer_identity)
    return InitiatorResult(_kdf(dhs), ad, ek.public)


def respond(
    identity: IdentityKey,
    peer_identity: bytes,
    spk_private: bytes,
    otk_private: bytes | None,
    ephemeral_pub: bytes,
) -> ResponderResult:
    """Bob's side: derive the same SK from Alice's identity and ephemeral keys."""
    _check_len(peer_identity, "peer identity")
    _check_len(spk_private, "signed prekey")
    _check_len(otk_private, "one-time prekey")
    _check_len(ephemeral_pub, "ephemeral key")
    peer_ik = IdentityKey.x25519_public(peer_identity)
    dhs = [
        x25519(spk_private, peer_ik),
        x25519(identity.x25519_private(), ephemeral_pub),
        x25519(spk_private, ephemeral_pub),
    ]
    if otk_private is not None:
        dhs.append(x25519(otk_private, ephemeral_pub))
    ad = encode_identity(peer_identity) + encode_identity(identity.public)
    return ResponderResult(_kdf(dhs), ad)
