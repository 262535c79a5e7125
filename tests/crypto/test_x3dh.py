"""X3DH: both roles agree on SK and AD, with and without a one-time prekey."""

from __future__ import annotations

import pytest

from tenchat.common.crypto import x3dh
from tenchat.common.crypto.errors import InvalidSignature
from tenchat.common.crypto.keys import IdentityKey, make_one_time_prekeys, make_signed_prekey


@pytest.fixture
def parties() -> tuple[IdentityKey, IdentityKey]:
    return IdentityKey.generate(), IdentityKey.generate()


def test_agreement_with_one_time_prekey(parties: tuple[IdentityKey, IdentityKey]) -> None:
    alice, bob = parties
    spk, otk = make_signed_prekey(bob, 1), make_one_time_prekeys(0, 1)[0]
    a = x3dh.initiate(alice, bob.public, spk.public, spk.sig, otk.public)
    b = x3dh.respond(bob, alice.public, spk.private, otk.private, a.ephemeral_pub)
    assert a.shared_key == b.shared_key and len(a.shared_key) == 32
    assert a.associated_data == b.associated_data == alice.public + bob.public
    # Without the one-time prekey the responder derives a different key.
    c = x3dh.respond(bob, alice.public, spk.private, None, a.ephemeral_pub)
    assert c.shared_key != a.shared_key


def test_agreement_without_one_time_prekey(parties: tuple[IdentityKey, IdentityKey]) -> None:
    alice, bob = parties
    spk = make_signed_prekey(bob, 1)
    a = x3dh.initiate(alice, bob.public, spk.public, spk.sig, None)
    b = x3dh.respond(bob, alice.public, spk.private, None, a.ephemeral_pub)
    assert a.shared_key == b.shared_key
    assert a.associated_data == b.associated_data


def test_every_initiation_is_fresh(parties: tuple[IdentityKey, IdentityKey]) -> None:
    alice, bob = parties
    spk = make_signed_prekey(bob, 1)
    one = x3dh.initiate(alice, bob.public, spk.public, spk.sig, None)
    two = x3dh.initiate(alice, bob.public, spk.public, spk.sig, None)
    assert one.ephemeral_pub != two.ephemeral_pub and one.shared_key != two.shared_key


def test_wrong_responder_identity_disagrees(parties: tuple[IdentityKey, IdentityKey]) -> None:
    alice, bob = parties
    mallory = IdentityKey.generate()
    spk = make_signed_prekey(bob, 1)
    a = x3dh.initiate(alice, bob.public, spk.public, spk.sig, None)
    b = x3dh.respond(bob, mallory.public, spk.private, None, a.ephemeral_pub)
    assert a.shared_key != b.shared_key and a.associated_data != b.associated_data


def test_bad_signed_prekey_signature(parties: tuple[IdentityKey, IdentityKey]) -> None:
    alice, bob = parties
    spk = make_signed_prekey(bob, 1)
    other = make_signed_prekey(bob, 2)
    forged = make_signed_prekey(IdentityKey.generate(), 1)
    bad_sigs = [
        bytes([spk.sig[0] ^ 1]) + spk.sig[1:],  # corrupted
        other.sig,  # bob's signature over another prekey
        forged.sig,  # someone else's signature
        bob.sign(spk.public),  # over the bare key, without Encode's 0x05
    ]
    for sig in bad_sigs:
        with pytest.raises(InvalidSignature):
            x3dh.initiate(alice, bob.public, spk.public, sig, None)
    with pytest.raises(InvalidSignature):  # a relay swapping in its own signed prekey
        x3dh.initiate(alice, bob.public, forged.public, forged.sig, None)
