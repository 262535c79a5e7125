"""Identity keys and prekeys: the long-term Ed25519 identity and the X25519 prekeys it signs.

The identity key is an Ed25519 signing key (its public key is the user id). For X3DH
it is converted to X25519 with libsodium's birational map
(``crypto_sign_ed25519_{pk,sk}_to_curve25519``).
"""

from __future__ import annotations

import os
from typing import Annotated

import msgspec
from nacl import bindings
from nacl.signing import SigningKey

from ..identity import signed_prekey_message
from .errors import CryptoError
from .primitives import x25519_public

__all__ = [
    "IdentityKey",
    "X25519KeyPair",
    "SignedPrekeySecret",
    "OneTimePrekeySecret",
    "make_signed_prekey",
    "make_one_time_prekeys",
]

_Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
_Sig64 = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
_KeyId = Annotated[int, msgspec.Meta(ge=0, lt=2**32)]


class IdentityKey:
    """An Ed25519 identity key pair, kept as its 32-byte seed."""

    __slots__ = ("_signing", "public")

    def __init__(self, signing_key: SigningKey) -> None:
        self._signing = signing_key
        self.public: bytes = bytes(signing_key.verify_key)  # Ed25519 public key = user id

    @classmethod
    def generate(cls) -> IdentityKey:
        return cls(SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> IdentityKey:
        if len(seed) != 32:
            raise CryptoError("an identity seed is 32 bytes")
        return cls(SigningKey(seed))

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed (what a keystore saves)."""
        return bytes(self._signing)

    def sign(self, msg: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``msg``."""
        return self._signing.sign(msg).signature

    def x25519_private(self) -> bytes:
        """The X25519 private key for Diffie-Hellman with this identity."""
        return bindings.crypto_sign_ed25519_sk_to_curve25519(self.seed + self.public)

    @staticmethod
    def x25519_public(ed25519_pub: bytes) -> bytes:
        """The X25519 public key of an Ed25519 public key; CryptoError if it is not a point."""
        if len(ed25519_pub) != 32:
            raise CryptoError("an Ed25519 public key is 32 bytes")
        try:
            return bindings.crypto_sign_ed25519_pk_to_curve25519(ed25519_pub)
        except Exception:  # PyNaCl raises RuntimeError / CryptoError for a non-point
            raise CryptoError("not a valid Ed25519 public key") from None

    def __repr__(self) -> str:
        return f"IdentityKey(public={self.public.hex()})"


class X25519KeyPair:
    """An X25519 key pair (ratchet keys, ephemeral keys, prekeys)."""

    __slots__ = ("private", "public")

    def __init__(self, private: bytes, public: bytes) -> None:
        self.private = private
        self.public = public

    @classmethod
    def generate(cls) -> X25519KeyPair:
        return cls.from_private(os.urandom(32))

    @classmethod
    def from_private(cls, private: bytes) -> X25519KeyPair:
        return cls(private, x25519_public(private))

    def __repr__(self) -> str:
        return f"X25519KeyPair(public={self.public.hex()})"


class SignedPrekeySecret(msgspec.Struct, frozen=True):
    """A signed prekey with its private half; ``sig`` is over ``signed_prekey_message``."""

    key_id: _KeyId
    private: _Key32
    public: _Key32
    sig: _Sig64


class OneTimePrekeySecret(msgspec.Struct, frozen=True):
    """A one-time prekey with its private half."""

    key_id: _KeyId
    private: _Key32
    public: _Key32


def make_signed_prekey(identity: IdentityKey, key_id: int) -> SignedPrekeySecret:
    """A fresh signed prekey: X25519 key pair, signed by ``identity`` over ``0x05 || pub``."""
    pair = X25519KeyPair.generate()
    sig = identity.sign(signed_prekey_message(pair.public))
    return SignedPrekeySecret(key_id=key_id, private=pair.private, public=pair.public, sig=sig)


def make_one_time_prekeys(start_id: int, count: int) -> list[OneTimePrekeySecret]:
    """``count`` fresh one-time prekeys numbered ``start_id, start_id + 1, …``."""
    keys = []
    for key_id in range(start_id, start_id + count):
        pair = X25519KeyPair.generate()
        keys.append(OneTimePrekeySecret(key_id=key_id, private=pair.private, public=pair.public))
    return keys
