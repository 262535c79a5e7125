"""Session: the envelope-level recipe the client uses."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import pytest

from tenchat.common.crypto.errors import (
    CryptoError,
    DecryptionFailed,
    InvalidEnvelope,
    InvalidSignature,
)
from tenchat.common.crypto.keys import (
    IdentityKey,
    OneTimePrekeySecret,
    SignedPrekeySecret,
    make_one_time_prekeys,
    make_signed_prekey,
)
from tenchat.common.crypto.ratchet import MAX_SKIP, Header
from tenchat.common.crypto.session import Session, envelope_ephemeral, envelope_kind


@dataclass
class Device:
    """A user's keys as a client would hold them."""

    identity: IdentityKey = field(default_factory=IdentityKey.generate)
    spks: dict[int, SignedPrekeySecret] = field(default_factory=dict)
    otks: dict[int, OneTimePrekeySecret] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spks[1] = make_signed_prekey(self.identity, 1)
        self.otks = {k.key_id: k for k in make_one_time_prekeys(10, 3)}

    def spk_private(self, key_id: int) -> bytes | None:
        spk = self.spks.get(key_id)
        return spk.private if spk else None

    def otk_private(self, key_id: int) -> bytes | None:
        otk = self.otks.get(key_id)
        return otk.private if otk else None

    def initiate_to(self, peer: Device, *, with_otk: bool = True) -> Session:
        spk = peer.spks[1]
        otk = peer.otks[10] if with_otk else None
        return Session.initiate(
            self.identity, peer.identity.public, spk.key_id, spk.public, spk.sig,
            otk.key_id if otk else None, otk.public if otk else None,
        )

    def respond(self, sender: Device, envelope: bytes) -> tuple[Session, bytes]:
        return Session.respond(
            self.identity, sender.identity.public, envelope, self.spk_private, self.otk_private
        )


def raw(envelope: bytes) -> dict:
    return msgspec.msgpack.decode(envelope)


def test_full_conversation_with_one_time_prekey() -> None:
    alice, bob = Device(), Device()
    a = alice.initiate_to(bob)
    e1, e2 = a.encrypt(b"hello"), a.encrypt(b"again")
    assert envelope_kind(e1) == envelope_kind(e2) == "prekey"
    assert raw(e1)["ik"] == alice.identity.public and raw(e1)["spk"] == 1 and raw(e1)["otk"] == 10
    assert envelope_ephemeral(e1) == envelope_ephemeral(e2) == a.ephemeral
    b, first = bob.respond(alice, e2)
    assert first == b"again"
    assert b.peer == alice.identity.public and a.peer == bob.identity.public
    assert b.used_otk_id == 10 and a.used_otk_id is None
    del bob.otks[b.used_otk_id]  # the caller deletes it
    assert b.ephemeral == envelope_ephemeral(e1)
    assert b.decrypt(e1) == b"hello"  # a prekey envelope of the same session
    r = b.encrypt(b"hi alice")
    assert envelope_kind(r) == "ratchet" and envelope_ephemeral(r) is None
    assert a.encrypt(b"still pending") and envelope_kind(a.encrypt(b"x")) == "prekey"
    assert a.decrypt(r) == b"hi alice"
    e3 = a.encrypt(b"now ratchet")
    assert envelope_kind(e3) == "ratchet"
    assert b.decrypt(e3) == b"now ratchet"
    assert a.associated_data == b.associated_data == alice.identity.public + bob.identity.public


def test_session_without_one_time_prekey() -> None:
    alice, bob = Device(), Device()
    a = alice.initiate_to(bob, with_otk=False)
    e = a.encrypt(b"no otk")
    assert raw(e)["otk"] is None
    b, pt = bob.respond(alice, e)
    assert pt == b"no otk" and b.used_otk_id is None


def test_initiate_with_bad_signature() -> None:
    alice, bob = Device(), Device()
    spk = bob.spks[1]
    with pytest.raises(InvalidSignature):
        Session.initiate(alice.identity, bob.identity.public, 1, spk.public,
                         bytes(64), None, None)
    with pytest.raises(InvalidSignature):  # bundle of bob, claimed to be mallory's
        Session.initiate(alice.identity, Device().identity.public, 1, spk.public, spk.sig,
                         None, None)


def test_prekey_envelope_from_wrong_sender_is_rejected() -> None:
    alice, bob, mallory = Device(), Device(), Device()
    e = alice.initiate_to(bob).encrypt(b"hello")
    # The relay says mallory sent it: the envelope's identity key doesn't match.
    with pytest.raises(DecryptionFailed):
        bob.respond(mallory, e)
    # Mallory rewrites the identity key to her own: X3DH and AD no longer agree.
    forged = raw(e)
    forged["ik"] = mallory.identity.public
    with pytest.raises(DecryptionFailed):
        bob.respond(mallory, msgspec.msgpack.encode(forged))
    assert bob.respond(alice, e)[1] == b"hello"


def test_respond_failures_are_opaque() -> None:
    alice, bob = Device(), Device()
    a = alice.initiate_to(bob)
    e = a.encrypt(b"hello")
    bad_ids = raw(e) | {"otk": 99}
    bad_spk = raw(e) | {"spk": 7}
    bad_ct = raw(e) | {"ct": bytes([raw(e)["ct"][0] ^ 1]) + raw(e)["ct"][1:]}
    for env in (bad_ids, bad_spk, bad_ct):
        with pytest.raises(DecryptionFailed):
            bob.respond(alice, msgspec.msgpack.encode(env))
    for garbage in (b"", b"\xc1", msgspec.msgpack.encode({"t": "nope"})):
        with pytest.raises(DecryptionFailed):
            bob.respond(alice, garbage)
    b, _ = bob.respond(alice, e)
    r = b.encrypt(b"reply")
    with pytest.raises(DecryptionFailed):  # a ratchet envelope can't start a session
        bob.respond(alice, r)


def test_prekey_envelope_of_another_session_is_rejected() -> None:
    alice, bob = Device(), Device()
    b, _ = bob.respond(alice, alice.initiate_to(bob).encrypt(b"first"))
    fresh = alice.initiate_to(bob, with_otk=False).encrypt(b"restarted")
    assert envelope_ephemeral(fresh) != b.ephemeral  # the client starts a new session instead
    before = b.to_bytes()
    with pytest.raises(DecryptionFailed):
        b.decrypt(fresh)
    assert b.to_bytes() == before
    assert bob.respond(alice, fresh)[1] == b"restarted"


def test_tampered_envelopes_change_nothing() -> None:
    alice, bob = Device(), Device()
    a = alice.initiate_to(bob)
    b, _ = bob.respond(alice, a.encrypt(b"hi"))
    a.decrypt(b.encrypt(b"hi back"))
    e = raw(a.encrypt(b"secret"))
    h = Header.from_bytes(e["h"])
    tampered = [
        e | {"ct": e["ct"][:-1] + bytes([e["ct"][-1] ^ 1])},
        e | {"h": Header(h.dh, h.pn, h.n + 1).to_bytes()},
        e | {"h": Header(h.dh, h.pn, h.n + MAX_SKIP + 5).to_bytes()},  # TooManySkipped inside
        e | {"h": e["h"][:-1]},
        e | {"v": 2},
    ]
    before = b.to_bytes()
    for env in tampered:
        with pytest.raises(DecryptionFailed):
            b.decrypt(msgspec.msgpack.encode(env))
        assert b.to_bytes() == before
    good = msgspec.msgpack.encode(e)
    assert b.decrypt(good) == b"secret"
    with pytest.raises(DecryptionFailed):  # replay
        b.decrypt(good)


def test_serialise_and_restore_mid_conversation() -> None:
    alice, bob = Device(), Device()
    a = alice.initiate_to(bob)
    a = Session.from_bytes(a.to_bytes())  # pending prekey data survives
    e1, e2 = a.encrypt(b"one"), a.encrypt(b"two")
    a = Session.from_bytes(a.to_bytes())
    assert envelope_kind(a.encrypt(b"three")) == "prekey"
    b, _ = bob.respond(alice, e2)
    b = Session.from_bytes(b.to_bytes())
    assert b.used_otk_id == 10 and b.peer == alice.identity.public and not b.is_initiator
    assert b.decrypt(e1) == b"one"
    r = b.encrypt(b"reply")
    b = Session.from_bytes(b.to_bytes())
    assert a.decrypt(r) == b"reply"
    a = Session.from_bytes(a.to_bytes())
    assert b.decrypt(a.encrypt(b"after restore")) == b"after restore"
    assert raw(a.to_bytes())["version"] == 1


def test_restore_rejects_garbage() -> None:
    alice, bob = Device(), Device()
    state = raw(alice.initiate_to(bob).to_bytes())
    for data in (b"", msgspec.msgpack.encode(state | {"version": 9}), b"\x93\x01\x02\x03"):
        with pytest.raises(CryptoError):
            Session.from_bytes(data)


def test_envelope_kind_and_ephemeral_reject_garbage() -> None:
    for data in (b"", b"\xc1", msgspec.msgpack.encode([1, 2]),
                 msgspec.msgpack.encode({"t": "ratchet", "v": 2, "h": bytes(40), "ct": b""}),
                 msgspec.msgpack.encode({"t": "ratchet", "v": 1, "h": bytes(39), "ct": b""})):
        with pytest.raises(InvalidEnvelope):
            envelope_kind(data)
        with pytest.raises(InvalidEnvelope):
            envelope_ephemeral(data)
    ok = msgspec.msgpack.encode({"t": "ratchet", "v": 1, "h": bytes(40), "ct": b""})
    assert envelope_kind(ok) == "ratchet"
