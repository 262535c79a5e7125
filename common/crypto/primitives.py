"""The primitives of the end-to-end crypto, and the one place where they are chosen.

Each primitive is a small abstract type (:class:`KDF`, :class:`AEAD`) so the protocol
code reads like the specifications; the bottom of this module picks the concrete
algorithms and the info strings (see ``docs/crypto.md``).
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from typing import Final

from nacl import bindings
from nacl.exceptions import CryptoError as NaclCryptoError

from .errors import CryptoError, DecryptionFailed

__all__ = [
    "hkdf_sha256",
    "x25519",
    "x25519_public",
    "KDF",
    "HkdfKDF",
    "HmacChainKDF",
    "AEAD",
    "XChaCha20Poly1305",
    "X3DH_INFO",
    "ROOT_KDF",
    "CHAIN_KDF",
    "CHAIN_CONSTANT",
    "MESSAGE_AEAD",
]

_HASH_LEN: Final = 32


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869); an empty ``salt`` means 32 zero bytes."""
    if not 0 < length <= 255 * _HASH_LEN:
        raise ValueError("HKDF-SHA256 can derive 1 to 8160 bytes")
    prk = hmac.digest(salt or b"\x00" * _HASH_LEN, ikm, hashlib.sha256)
    okm = b""
    block = b""
    counter = 1
    while len(okm) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), hashlib.sha256)
        okm += block
        counter += 1
    return okm[:length]


def x25519(private: bytes, public: bytes) -> bytes:
    """X25519 Diffie-Hellman; CryptoError for a malformed or low-order public key."""
    if len(private) != 32 or len(public) != 32:
        raise CryptoError("X25519 keys are 32 bytes")
    try:
        return bindings.crypto_scalarmult(private, public)
    except (NaclCryptoError, RuntimeError, ValueError, TypeError):
        # libsodium refuses points that give an all-zero shared secret.
        raise CryptoError("X25519 failed (low-order public key)") from None


def x25519_public(private: bytes) -> bytes:
    """The X25519 public key of ``private``."""
    if len(private) != 32:
        raise CryptoError("X25519 private keys are 32 bytes")
    return bindings.crypto_scalarmult_base(private)


class KDF(ABC):
    """A KDF-chain step: ``derive(key, data, length)``, as in the Double Ratchet spec."""

    @abstractmethod
    def derive(self, key: bytes, data: bytes, length: int) -> bytes:
        """``length`` bytes from the secret ``key`` and the input ``data``."""


class HkdfKDF(KDF):
    """HKDF-SHA256 with ``key`` as salt, ``data`` as input key material, a fixed info."""

    def __init__(self, info: bytes) -> None:
        self.info = info

    def derive(self, key: bytes, data: bytes, length: int) -> bytes:
        return hkdf_sha256(data, salt=key, info=self.info, length=length)


class HmacChainKDF(KDF):
    """HMAC-SHA256 keyed with ``key``, one HMAC per byte of ``data``, concatenated.

    With ``data = 0x02 0x01`` this is the spec's recommended ``KDF_CK``: the next
    chain key is HMAC(ck, 0x02), the message key HMAC(ck, 0x01).
    """

    def derive(self, key: bytes, data: bytes, length: int) -> bytes:
        if length != len(data) * _HASH_LEN:
            raise ValueError("HmacChainKDF derives 32 bytes per byte of data")
        return b"".join(hmac.digest(key, data[i : i + 1], hashlib.sha256) for i in range(len(data)))


class AEAD(ABC):
    """Authenticated encryption with associated data under a single-use key."""

    @abstractmethod
    def encrypt(self, key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        """Ciphertext (with tag) of ``plaintext``."""

    @abstractmethod
    def decrypt(self, key: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
        """Plaintext of ``ciphertext``; DecryptionFailed if it does not authenticate."""


class XChaCha20Poly1305(AEAD):
    """XChaCha20-Poly1305 (IETF) with key and nonce derived from a single-use message key.

    ``key || nonce = HKDF-SHA256(ikm=mk, salt=32 zero bytes, info, 32 + 24)``. A message
    key is used for exactly one message, so the derived nonce never repeats under a key.
    """

    KEY_LEN: Final = 32
    NONCE_LEN: Final = 24

    def __init__(self, info: bytes) -> None:
        self.info = info

    def _key_nonce(self, key: bytes) -> tuple[bytes, bytes]:
        okm = hkdf_sha256(key, salt=b"", info=self.info, length=self.KEY_LEN + self.NONCE_LEN)
        return okm[: self.KEY_LEN], okm[self.KEY_LEN :]

    def encrypt(self, key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
        k, nonce = self._key_nonce(key)
        return bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, associated_data, nonce, k
        )

    def decrypt(self, key: bytes, ciphertext: bytes, associated_data: bytes) -> bytes:
        k, nonce = self._key_nonce(key)
        try:
            return bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                ciphertext, associated_data, nonce, k
            )
        except (NaclCryptoError, ValueError, TypeError):
            raise DecryptionFailed("message does not authenticate") from None


# --- the concrete choices (docs/crypto.md lists them) -------------------------------------

X3DH_INFO: Final = b"tenchat/x3dh/v1"
ROOT_KDF: Final[KDF] = HkdfKDF(b"tenchat/ratchet/root/v1")  # KDF_RK: salt = RK, ikm = DH output
CHAIN_KDF: Final[KDF] = HmacChainKDF()  # KDF_CK
CHAIN_CONSTANT: Final = b"\x02\x01"  # -> next chain key (0x02) || message key (0x01)
MESSAGE_AEAD: Final[AEAD] = XChaCha20Poly1305(b"tenchat/ratchet/message/v1")
