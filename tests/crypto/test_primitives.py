"""HKDF, the chain KDF, XChaCha20-Poly1305 and X25519 as the protocol uses them."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenchat.common.crypto.errors import CryptoError, DecryptionFailed
from tenchat.common.crypto.primitives import (
    CHAIN_CONSTANT,
    CHAIN_KDF,
    MESSAGE_AEAD,
    ROOT_KDF,
    hkdf_sha256,
    x25519,
    x25519_public,
)


def test_hkdf_rfc5869_case_1() -> None:
    okm = hkdf_sha256(
        bytes.fromhex("0b" * 22),
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_hkdf_rfc5869_case_3_empty_salt_and_info() -> None:
    okm = hkdf_sha256(bytes.fromhex("0b" * 22), salt=b"", info=b"", length=42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_root_kdf_is_hkdf_with_root_key_as_salt() -> None:
    rk, dh = b"\x01" * 32, b"\x02" * 32
    assert ROOT_KDF.derive(rk, dh, 64) == hkdf_sha256(
        dh, salt=rk, info=b"tenchat/ratchet/root/v1", length=64
    )


def test_chain_kdf_is_the_specs_hmac_construction() -> None:
    ck = b"\x07" * 32
    out = CHAIN_KDF.derive(ck, CHAIN_CONSTANT, 64)
    assert out[:32] == hmac.digest(ck, b"\x02", hashlib.sha256)  # next chain key
    assert out[32:] == hmac.digest(ck, b"\x01", hashlib.sha256)  # message key


@given(st.binary(max_size=300), st.binary(max_size=100))
def test_aead_round_trip(plaintext: bytes, ad: bytes) -> None:
    key = hashlib.sha256(plaintext + ad).digest()
    ct = MESSAGE_AEAD.encrypt(key, plaintext, ad)
    assert len(ct) == len(plaintext) + 16
    assert MESSAGE_AEAD.decrypt(key, ct, ad) == plaintext


def test_aead_rejects_tampering() -> None:
    key = b"\x09" * 32
    ct = MESSAGE_AEAD.encrypt(key, b"attack at dawn", b"ad")
    flipped = bytes([ct[0] ^ 1]) + ct[1:]
    for args in ((key, flipped, b"ad"), (key, ct, b"ae"), (b"\x08" * 32, ct, b"ad")):
        with pytest.raises(DecryptionFailed):
            MESSAGE_AEAD.decrypt(*args)


def test_x25519_agrees_and_rejects_low_order_points() -> None:
    a, b = b"\x11" * 32, b"\x22" * 32
    assert x25519(a, x25519_public(b)) == x25519(b, x25519_public(a))
    with pytest.raises(CryptoError):
        x25519(a, b"\x00" * 32)
    with pytest.raises(CryptoError):
        x25519(a, b"\x01" * 31)
