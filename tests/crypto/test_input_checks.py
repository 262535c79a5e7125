"""The crypto layer's own input checks (common/crypto): wrong lengths, exhausted chains,
unknown versions — each refused with the error its caller catches — and reprs that name
public keys only."""

from __future__ import annotations

import os

import pytest

from tenchat.common.crypto import primitives, x3dh
from tenchat.common.crypto.errors import CryptoError
from tenchat.common.crypto.keys import IdentityKey, X25519KeyPair, make_signed_prekey
from tenchat.common.crypto.ratchet import DoubleRatchet
from tenchat.common.crypto.safety import safety_number
from tenchat.common.crypto.sender_keys import SenderKey
from tenchat.common.crypto.session import Session, SessionRecord


@pytest.mark.parametrize("length", [0, 255 * 32 + 1])
def test_hkdf_derives_1_to_8160_bytes(length: int) -> None:
    with pytest.raises(ValueError):
        primitives.hkdf_sha256(b"k", salt=b"", info=b"", length=length)
    assert len(primitives.hkdf_sha256(b"k", salt=b"", info=b"", length=255 * 32)) == 8160


def test_the_chain_kdf_derives_32_bytes_per_input_byte() -> None:
    kdf = primitives.HmacChainKDF()
    assert len(kdf.derive(bytes(32), b"\x02\x01", 64)) == 64
    with pytest.raises(ValueError):
        kdf.derive(bytes(32), b"\x02\x01", 32)


def test_key_lengths_are_checked() -> None:
    with pytest.raises(CryptoError):
        primitives.x25519_public(bytes(31))
    with pytest.raises(CryptoError):
        DoubleRatchet.init_sender(bytes(31), bytes(32))
    with pytest.raises(CryptoError):
        DoubleRatchet.init_sender(bytes(32), bytes(33))
    with pytest.raises(CryptoError):
        DoubleRatchet.init_receiver(bytes(16), X25519KeyPair.generate())
    with pytest.raises(ValueError):
        safety_number(bytes(32), bytes(31))
    with pytest.raises(CryptoError):
        IdentityKey.x25519_public(bytes(31))


def test_an_ed25519_key_that_is_not_a_point_is_refused() -> None:
    # y = 2 has no x on edwards25519: no curve point, so no X25519 key either
    not_a_point = (2).to_bytes(32, "little")
    with pytest.raises(CryptoError, match="not a valid"):
        IdentityKey.x25519_public(not_a_point)


def test_x3dh_refuses_keys_of_the_wrong_length() -> None:
    alice, bob = IdentityKey.generate(), IdentityKey.generate()
    spk = make_signed_prekey(bob, 1)
    for peer, spk_pub, otk in ((bob.public[:31], spk.public, None),
                               (bob.public, spk.public + b"\x00", None),
                               (bob.public, spk.public, bytes(16))):
        with pytest.raises(CryptoError, match="32 bytes"):
            x3dh.initiate(alice, peer, spk_pub, spk.sig, otk)


def test_a_session_needs_both_otk_id_and_otk_pub_or_neither() -> None:
    alice, bob = IdentityKey.generate(), IdentityKey.generate()
    spk = make_signed_prekey(bob, 1)
    with pytest.raises(CryptoError, match="both"):
        Session.initiate(alice, bob.public, 1, spk.public, spk.sig, 5, None)
    with pytest.raises(CryptoError, match="no session"):
        SessionRecord([]).encrypt(b"x")


def test_a_sending_chain_stops_before_its_counter_wraps() -> None:
    ratchet = DoubleRatchet.init_sender(os.urandom(32), X25519KeyPair.generate().public)
    ratchet.state.ns = 2**32 - 1
    with pytest.raises(CryptoError, match="exhausted"):
        ratchet.encrypt(b"x", b"ad")
    own = SenderKey.create(os.urandom(16))
    own.state.iteration = 2**32
    with pytest.raises(CryptoError, match="exhausted"):
        own.encrypt(b"x")


def test_a_distribution_of_another_version_or_out_of_range_is_refused() -> None:
    own = SenderKey.create(os.urandom(16))
    good = own.distribution()
    assert SenderKey.from_distribution(good).chain_id == own.chain_id
    for change in ({"v": 2}, {"iteration": 2**32}, {"chain_id": -1}):
        dist = own.distribution()
        for field, value in change.items():
            setattr(dist, field, value)
        with pytest.raises(CryptoError):
            SenderKey.from_distribution(dist)


def test_reprs_show_public_keys_and_never_a_secret() -> None:
    alice, bob = IdentityKey.generate(), IdentityKey.generate()
    pair = X25519KeyPair.generate()
    assert pair.public.hex() in repr(pair) and pair.private.hex() not in repr(pair)
    assert alice.public.hex() in repr(alice) and alice.seed.hex() not in repr(alice)
    own = SenderKey.create(os.urandom(16))
    text = repr(own)
    assert "own" in text and own.state.chain_key.hex() not in text
    assert "peer" in repr(SenderKey.from_distribution(own.distribution()))
    spk = make_signed_prekey(bob, 1)
    session = Session.initiate(alice, bob.public, 1, spk.public, spk.sig, None, None)
    assert bob.public.hex() in repr(session) and "initiator=True" in repr(session)
