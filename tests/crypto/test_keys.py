"""Identity keys, their X25519 form, and prekeys."""

from __future__ import annotations

import pytest

from tenchat.common.crypto.errors import CryptoError
from tenchat.common.crypto.keys import (
    IdentityKey,
    X25519KeyPair,
    make_one_time_prekeys,
    make_signed_prekey,
)
from tenchat.common.crypto.primitives import x25519
from tenchat.common.identity import signed_prekey_message, verify_signature


def test_identity_from_seed_round_trip() -> None:
    ik = IdentityKey.generate()
    again = IdentityKey.from_seed(ik.seed)
    assert again.public == ik.public and len(ik.seed) == 32 and len(ik.public) == 32
    assert verify_signature(ik.public, b"msg", again.sign(b"msg"))
    assert ik.seed.hex() not in repr(ik)
    with pytest.raises(CryptoError):
        IdentityKey.from_seed(b"short")


def test_identity_x25519_forms_agree() -> None:
    a, b = IdentityKey.generate(), IdentityKey.generate()
    assert x25519(a.x25519_private(), IdentityKey.x25519_public(b.public)) == x25519(
        b.x25519_private(), IdentityKey.x25519_public(a.public)
    )
    assert X25519KeyPair.from_private(a.x25519_private()).public == IdentityKey.x25519_public(
        a.public
    )


def test_x25519_public_rejects_non_points() -> None:
    with pytest.raises(CryptoError):
        IdentityKey.x25519_public(b"\x00" * 31)


def test_signed_prekey_is_signed_over_encode_spk() -> None:
    ik = IdentityKey.generate()
    spk = make_signed_prekey(ik, 42)
    assert spk.key_id == 42
    assert X25519KeyPair.from_private(spk.private).public == spk.public
    assert verify_signature(ik.public, signed_prekey_message(spk.public), spk.sig)
    assert signed_prekey_message(spk.public) == b"\x05" + spk.public


def test_one_time_prekeys() -> None:
    otks = make_one_time_prekeys(100, 5)
    assert [k.key_id for k in otks] == [100, 101, 102, 103, 104]
    assert len({k.public for k in otks}) == 5
    assert all(X25519KeyPair.from_private(k.private).public == k.public for k in otks)
