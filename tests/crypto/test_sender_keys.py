"""Sender keys: round trip, late joiners, order, replay, tampering, limits, forward secrecy,
rotation, persistence."""

from __future__ import annotations

import hashlib
import hmac
import os

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from tenchat.common.crypto.errors import (
    CryptoError,
    DecryptionFailed,
    InvalidEnvelope,
    InvalidSignature,
    TooManySkippedMessages,
)
from tenchat.common.crypto.sender_keys import (
    MAX_SKIP,
    MAX_STORED_SKIPPED,
    SENDER_KEY_AEAD,
    GroupMessage,
    SenderKey,
    SenderKeyDistribution,
    _aead_ad,
    _kdf_ck,
    _signed_bytes,
    message_chain_id,
)

GROUP = bytes(range(16))
ALICE = b"A" * 32
AD = GROUP + ALICE  # what the client binds: group id || sender's user id


def chain() -> tuple[SenderKey, SenderKey]:
    """Alice's sending chain and Bob's receiving copy of it, from the start."""
    alice = SenderKey.create(GROUP)
    return alice, SenderKey.from_distribution(alice.distribution())


def send(sender: SenderKey, n: int, prefix: str = "m") -> list[bytes]:
    return [sender.encrypt(f"{prefix}{i}".encode(), AD) for i in range(n)]


def decode(message: bytes) -> GroupMessage:
    return msgspec.msgpack.decode(message, type=GroupMessage)


def resign(message: GroupMessage, seed: bytes, ad: bytes = AD) -> bytes:
    """``message`` signed with ``seed`` as the sender would (to forge as a key holder)."""
    signed = _signed_bytes(
        message.v, GROUP, message.chain_id, message.iteration, message.ciphertext, ad
    )
    message.sig = SigningKey(seed).sign(signed).signature
    return msgspec.msgpack.encode(message)


def test_round_trip() -> None:
    alice, bob = chain()
    for i, m in enumerate(send(alice, 5)):
        assert message_chain_id(m) == alice.chain_id
        assert bob.decrypt(m, AD) == f"m{i}".encode()
    assert alice.iteration == bob.iteration == 5
    assert bob.group_id == alice.group_id == GROUP
    assert bob.chain_id == alice.chain_id
    assert alice.is_own and not bob.is_own


def test_round_trip_without_associated_data() -> None:
    alice, bob = chain()
    assert bob.decrypt(alice.encrypt(b"hi")) == b"hi"


def test_message_format() -> None:
    alice, _ = chain()
    raw = msgspec.msgpack.decode(alice.encrypt(b"hello", AD))
    assert list(raw) == ["v", "chain_id", "iteration", "ciphertext", "sig"]
    assert raw["v"] == 1 and raw["chain_id"] == alice.chain_id and raw["iteration"] == 0
    assert len(raw["ciphertext"]) == len(b"hello") + 16 and len(raw["sig"]) == 64


def test_construction_matches_the_spec() -> None:
    """Recompute a message from the documented KDF, AEAD and signature construction."""
    alice, _ = chain()
    ck0 = alice.distribution().chain_key
    msg = decode(alice.encrypt(b"spec", AD))
    ck1, mk0 = _kdf_ck(ck0)
    assert mk0 == hmac.digest(ck0, b"\x01", hashlib.sha256)
    assert ck1 == hmac.digest(ck0, b"\x02", hashlib.sha256) == alice.distribution().chain_key
    ad = GROUP + alice.chain_id.to_bytes(4, "big") + (0).to_bytes(4, "big") + AD
    assert _aead_ad(GROUP, alice.chain_id, 0, AD) == ad
    assert SENDER_KEY_AEAD.decrypt(mk0, msg.ciphertext, ad) == b"spec"
    signed = (
        b"tenchat/sender-key/sig/v1"
        + b"\x01"
        + GROUP
        + alice.chain_id.to_bytes(4, "big")
        + (0).to_bytes(4, "big")
        + len(AD).to_bytes(8, "big")
        + AD
        + msg.ciphertext
    )
    SigningKey(alice.state.signing_private or b"").verify_key.verify(signed, msg.sig)


def test_late_joiner_cannot_read_earlier_messages() -> None:
    alice, early = chain()
    before = send(alice, 3, "before")
    late = SenderKey.from_distribution(alice.distribution())
    assert late.iteration == 3
    after = send(alice, 2, "after")
    for m in before:
        with pytest.raises(DecryptionFailed):
            late.decrypt(m, AD)
    assert [late.decrypt(m, AD) for m in after] == [b"after0", b"after1"]
    assert [early.decrypt(m, AD) for m in before + after] == [
        b"before0",
        b"before1",
        b"before2",
        b"after0",
        b"after1",
    ]


def test_out_of_order_and_skipped() -> None:
    alice, bob = chain()
    ms = send(alice, 6)
    assert bob.decrypt(ms[4], AD) == b"m4"  # skips 0-3
    assert bob.decrypt(ms[1], AD) == b"m1"
    assert bob.decrypt(ms[5], AD) == b"m5"
    assert bob.decrypt(ms[0], AD) == b"m0"
    assert sorted(bob.state.skipped) == [2, 3]
    assert bob.decrypt(ms[3], AD) == b"m3"
    # m2 is never delivered: its key stays, nothing else does.
    assert list(bob.state.skipped) == [2]


def test_replay_rejected() -> None:
    alice, bob = chain()
    ms = send(alice, 3)
    bob.decrypt(ms[2], AD)
    bob.decrypt(ms[0], AD)
    for m in (ms[2], ms[0]):
        before = bob.to_bytes()
        with pytest.raises(DecryptionFailed):
            bob.decrypt(m, AD)
        assert bob.to_bytes() == before
    assert bob.decrypt(ms[1], AD) == b"m1"


def test_tampered_ciphertext_rejected_state_unchanged() -> None:
    alice, bob = chain()
    (m,) = send(alice, 1)
    msg = decode(m)
    msg.ciphertext = bytes([msg.ciphertext[0] ^ 1]) + msg.ciphertext[1:]
    before = bob.to_bytes()
    with pytest.raises(InvalidSignature):
        bob.decrypt(msgspec.msgpack.encode(msg), AD)
    assert bob.to_bytes() == before
    # Even re-signed with the chain's own key, the AEAD catches it.
    assert alice.state.signing_private is not None
    with pytest.raises(DecryptionFailed):
        bob.decrypt(resign(msg, alice.state.signing_private), AD)
    assert bob.to_bytes() == before
    assert bob.decrypt(m, AD) == b"m0"


def test_tampered_header_rejected_state_unchanged() -> None:
    alice, bob = chain()
    ms = send(alice, 2)
    msg = decode(ms[0])
    msg.iteration = 1
    before = bob.to_bytes()
    with pytest.raises(InvalidSignature):
        bob.decrypt(msgspec.msgpack.encode(msg), AD)
    assert bob.to_bytes() == before


def test_wrong_signature_rejected_state_unchanged() -> None:
    """A member who holds the chain key can't forge a message as its sender."""
    alice, bob = chain()
    forger = SenderKey(
        msgspec.structs.replace(alice.state, signing_private=bytes(SigningKey.generate()))
    )
    forged = forger.encrypt(b"I am Alice", AD)
    before = bob.to_bytes()
    with pytest.raises(InvalidSignature):
        bob.decrypt(forged, AD)
    assert bob.to_bytes() == before
    bad_sig = decode(send(alice, 1)[0])
    bad_sig.sig = bytes(64)
    with pytest.raises(InvalidSignature):
        bob.decrypt(msgspec.msgpack.encode(bad_sig), AD)
    assert bob.to_bytes() == before


def test_wrong_associated_data_rejected_state_unchanged() -> None:
    alice, bob = chain()
    (m,) = send(alice, 1)
    before = bob.to_bytes()
    for ad in (b"", GROUP + b"M" * 32, AD + b"x"):
        with pytest.raises(InvalidSignature):
            bob.decrypt(m, ad)
        assert bob.to_bytes() == before
    assert bob.decrypt(m, AD) == b"m0"


def test_message_of_another_chain_or_garbage_rejected() -> None:
    alice, bob = chain()
    carol, _ = chain()
    before = bob.to_bytes()
    for m in (carol.encrypt(b"x", AD), b"", b"\x80", msgspec.msgpack.encode({"v": 1})):
        with pytest.raises(DecryptionFailed):
            bob.decrypt(m, AD)
    assert bob.to_bytes() == before


def test_message_chain_id() -> None:
    alice, _ = chain()
    assert message_chain_id(alice.encrypt(b"x")) == alice.chain_id
    raw = msgspec.msgpack.decode(alice.encrypt(b"x"))
    for garbage in (
        b"",
        b"\xc1",
        msgspec.msgpack.encode([1, 2, 3]),
        msgspec.msgpack.encode({**raw, "v": 2}),
        msgspec.msgpack.encode({**raw, "chain_id": -1}),
        msgspec.msgpack.encode({**raw, "sig": b"short"}),
    ):
        with pytest.raises(InvalidEnvelope):
            message_chain_id(garbage)


def test_too_far_ahead_rejected_state_unchanged() -> None:
    alice, bob = chain()
    ms = send(alice, MAX_SKIP + 2)
    before = bob.to_bytes()
    with pytest.raises(TooManySkippedMessages):
        bob.decrypt(ms[MAX_SKIP + 1], AD)
    assert bob.to_bytes() == before
    assert bob.decrypt(ms[MAX_SKIP], AD) == f"m{MAX_SKIP}".encode()  # exactly MAX_SKIP: fine
    assert len(bob.state.skipped) == MAX_SKIP


def test_skipped_keys_capped_oldest_evicted() -> None:
    alice, bob = chain()
    extra = 100
    ms = send(alice, MAX_STORED_SKIPPED + extra + 2)
    bob.decrypt(ms[MAX_STORED_SKIPPED], AD)  # stores keys 0 .. cap-1
    bob.decrypt(ms[MAX_STORED_SKIPPED + extra + 1], AD)  # stores `extra` more
    assert len(bob.state.skipped) == MAX_STORED_SKIPPED
    for i in range(extra):  # the oldest went first
        with pytest.raises(DecryptionFailed):
            bob.decrypt(ms[i], AD)
    assert bob.decrypt(ms[extra], AD) == f"m{extra}".encode()
    assert bob.decrypt(ms[MAX_STORED_SKIPPED + 1], AD) == f"m{MAX_STORED_SKIPPED + 1}".encode()


def test_forward_secrecy() -> None:
    alice, bob = chain()
    ms = send(alice, 5)
    for m in ms[:4]:
        bob.decrypt(m, AD)
    # An attacker captures both states now.
    stolen_receiver = SenderKey.from_bytes(bob.to_bytes())
    stolen_sender = SenderKey.from_distribution(
        SenderKey.from_bytes(alice.to_bytes()).distribution()
    )
    for m in ms[:4]:
        for stolen in (stolen_receiver, stolen_sender):
            with pytest.raises(DecryptionFailed):
                stolen.decrypt(m, AD)
    # Only what was never received is still readable, and nothing before it.
    assert stolen_receiver.decrypt(ms[4], AD) == b"m4"


def test_sender_does_not_decrypt_its_own_chain() -> None:
    alice, _ = chain()
    (m,) = send(alice, 1)
    with pytest.raises(DecryptionFailed):
        alice.decrypt(m, AD)


def test_receiving_chain_cannot_send() -> None:
    _, bob = chain()
    with pytest.raises(CryptoError):
        bob.encrypt(b"x", AD)


def test_rotation_old_holder_cannot_read_new_chain() -> None:
    old, bob = chain()
    bob.decrypt(old.encrypt(b"old", AD), AD)
    new = SenderKey.create(GROUP)  # e.g. after a member left
    assert new.chain_id != old.chain_id or new.signing_public != old.signing_public
    m = new.encrypt(b"new", AD)
    with pytest.raises(DecryptionFailed):
        bob.decrypt(m, AD)
    # Even if the chain ids collided, the old holder has neither key.
    same_id = SenderKey(msgspec.structs.replace(new.state, chain_id=old.chain_id))
    with pytest.raises(InvalidSignature):
        bob.decrypt(same_id.encrypt(b"new", AD), AD)
    assert new.distribution().chain_key != old.distribution().chain_key
    assert SenderKey.from_distribution(new.distribution()).decrypt(new.encrypt(b"n", AD), AD)


def test_serialise_restore_mid_stream() -> None:
    alice, bob = chain()
    ms = send(alice, 6)
    bob.decrypt(ms[3], AD)
    bob.decrypt(ms[0], AD)
    bob = SenderKey.from_bytes(bob.to_bytes())
    alice = SenderKey.from_bytes(alice.to_bytes())
    more = send(alice, 2, "n")
    assert bob.decrypt(more[1], AD) == b"n1"
    assert bob.decrypt(ms[2], AD) == b"m2"
    assert bob.decrypt(ms[5], AD) == b"m5"
    assert bob.decrypt(ms[1], AD) == b"m1"
    assert bob.decrypt(more[0], AD) == b"n0"
    assert bob.decrypt(ms[4], AD) == b"m4"
    assert bob.state.skipped == {}
    with pytest.raises(DecryptionFailed):
        bob.decrypt(ms[3], AD)


def test_distribution_bytes_round_trip() -> None:
    alice, _ = chain()
    send(alice, 2)
    dist = SenderKeyDistribution.from_bytes(alice.distribution().to_bytes())
    assert dist == alice.distribution()
    assert list(msgspec.msgpack.decode(dist.to_bytes())) == [
        "v",
        "group_id",
        "chain_id",
        "iteration",
        "chain_key",
        "signing_pub",
    ]
    for garbage in (b"", msgspec.msgpack.encode({"v": 1}), dist.to_bytes()[:-1]):
        with pytest.raises(InvalidEnvelope):
            SenderKeyDistribution.from_bytes(garbage)
    raw = msgspec.msgpack.decode(dist.to_bytes())
    with pytest.raises(InvalidEnvelope):
        SenderKeyDistribution.from_bytes(msgspec.msgpack.encode({**raw, "v": 2}))


def test_malformed_inputs_refused() -> None:
    with pytest.raises(CryptoError):
        SenderKey.create(b"short")
    alice, bob = chain()
    bad = msgspec.structs.replace(alice.distribution(), chain_key=b"x")
    with pytest.raises(CryptoError):
        SenderKey.from_distribution(bad)
    with pytest.raises(CryptoError):
        SenderKey.from_bytes(b"\x80")
    raw = msgspec.msgpack.decode(bob.to_bytes())
    with pytest.raises(CryptoError):
        SenderKey.from_bytes(msgspec.msgpack.encode({**raw, "version": 2}))
    mismatched = msgspec.structs.replace(alice.state, signing_public=bob.signing_public[::-1])
    with pytest.raises(CryptoError):
        SenderKey.from_bytes(msgspec.msgpack.encode(mismatched))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_delivery_order(data: st.DataObject) -> None:
    """Any order, with losses and duplicates: each message decrypts exactly once."""
    alice = SenderKey.create(os.urandom(16))
    join_at = data.draw(st.integers(0, 3), label="join_at")
    ad = alice.group_id + ALICE
    for _ in range(join_at):
        alice.encrypt(b"early", ad)
    bob = SenderKey.from_distribution(alice.distribution())
    n = data.draw(st.integers(1, 25), label="n")
    ms = [alice.encrypt(f"m{i}".encode(), ad) for i in range(n)]
    duplicates = data.draw(st.lists(st.integers(0, n - 1), max_size=2 * n), label="duplicates")
    delivered = data.draw(st.permutations(list(range(n)) + duplicates), label="deliveries")
    drop = data.draw(st.sets(st.sampled_from(range(n))), label="dropped")
    seen: set[int] = set()
    for i in delivered:
        if i in drop:
            continue
        if data.draw(st.booleans(), label="restore"):
            bob = SenderKey.from_bytes(bob.to_bytes())
        if i in seen:
            with pytest.raises(DecryptionFailed):
                bob.decrypt(ms[i], ad)
        else:
            assert bob.decrypt(ms[i], ad) == f"m{i}".encode()
            seen.add(i)
    assert seen == set(range(n)) - drop
    assert set(bob.state.skipped) == {join_at + i for i in drop if i < max(seen, default=-1)}
