"""The Double Ratchet: order, loss, replay, tampering, limits, forward secrecy, persistence."""

from __future__ import annotations

import os

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenchat.common.crypto.errors import (
    CryptoError,
    DecryptionFailed,
    InvalidEnvelope,
    TooManySkippedMessages,
)
from tenchat.common.crypto.keys import X25519KeyPair
from tenchat.common.crypto.ratchet import (
    MAX_SKIP,
    MAX_STORED_SKIPPED,
    DoubleRatchet,
    Header,
)

AD = b"A" * 32 + b"B" * 32
Msg = tuple[Header, bytes]


def pair() -> tuple[DoubleRatchet, DoubleRatchet]:
    sk = os.urandom(32)
    bob_spk = X25519KeyPair.generate()
    return DoubleRatchet.init_sender(sk, bob_spk.public), DoubleRatchet.init_receiver(sk, bob_spk)


def send(r: DoubleRatchet, n: int, prefix: str = "m") -> list[Msg]:
    return [r.encrypt(f"{prefix}{i}".encode(), AD) for i in range(n)]


def recv(r: DoubleRatchet, msg: Msg) -> bytes:
    return r.decrypt(msg[0], msg[1], AD)


def test_ping_pong() -> None:
    alice, bob = pair()
    for turn in range(5):
        (m,) = send(alice, 1, f"a{turn}-")
        assert recv(bob, m) == f"a{turn}-0".encode()
        (r,) = send(bob, 1, f"b{turn}-")
        assert recv(alice, r) == f"b{turn}-0".encode()


def test_receiver_cannot_send_first() -> None:
    _, bob = pair()
    with pytest.raises(CryptoError):
        bob.encrypt(b"x", AD)


def test_each_turn_uses_a_new_ratchet_key() -> None:
    alice, bob = pair()
    a1 = send(alice, 2)
    assert a1[0][0].dh == a1[1][0].dh and [h.n for h, _ in a1] == [0, 1]
    recv(bob, a1[0])
    (b1,) = send(bob, 1)
    recv(alice, b1)
    (a2,) = send(alice, 1)
    assert a2[0].dh != a1[0][0].dh and a2[0].pn == 2 and a2[0].n == 0


def test_out_of_order_and_skipped_across_ratchet_steps() -> None:
    alice, bob = pair()
    chain1 = send(alice, 4, "a1-")
    assert recv(bob, chain1[2]) == b"a1-2"  # skips 0, 1
    assert recv(bob, chain1[0]) == b"a1-0"
    (b1,) = send(bob, 1, "b")
    assert recv(alice, b1) == b"b0"
    chain2 = send(alice, 3, "a2-")
    assert recv(bob, chain2[1]) == b"a2-1"  # new DH step; stores chain1[3] via PN, chain2[0]
    (b2,) = send(bob, 1)
    recv(alice, b2)
    chain3 = send(alice, 1, "a3-")
    assert recv(bob, chain3[0]) == b"a3-0"
    # Stragglers from two and three ratchet steps ago still open, exactly once.
    assert recv(bob, chain1[3]) == b"a1-3"
    assert recv(bob, chain2[0]) == b"a2-0"
    assert recv(bob, chain1[1]) == b"a1-1"
    assert recv(bob, chain2[2]) == b"a2-2"
    assert bob.state.skipped == {}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_delivery_order(data: st.DataObject) -> None:
    parties = dict(zip("AB", pair(), strict=True))
    in_flight: dict[str, list[tuple[Msg, bytes]]] = {"A": [], "B": []}
    can_send = {"A": True, "B": False}
    for step in range(data.draw(st.integers(1, 40))):
        options = [("send", w) for w in "AB" if can_send[w]]
        options += [("recv", w) for w in "AB" if in_flight[w]]
        action, who = data.draw(st.sampled_from(options))
        if action == "send":
            to = "B" if who == "A" else "A"
            pt = f"{who}{step}".encode()
            in_flight[to].append((parties[who].encrypt(pt, AD), pt))
        else:
            i = data.draw(st.integers(0, len(in_flight[who]) - 1))
            msg, pt = in_flight[who].pop(i)
            assert recv(parties[who], msg) == pt
            can_send[who] = True
    for who in "AB":
        for msg, pt in in_flight[who]:
            assert recv(parties[who], msg) == pt


def test_replay_is_rejected() -> None:
    alice, bob = pair()
    msgs = send(alice, 3)
    recv(bob, msgs[0])
    recv(bob, msgs[2])  # msgs[1] becomes a skipped key
    recv(bob, msgs[1])  # ... and is used up here
    for m in msgs:
        before = bob.to_bytes()
        with pytest.raises(DecryptionFailed):
            recv(bob, m)
        assert bob.to_bytes() == before


def test_forward_secrecy_captured_state_cannot_read_earlier_messages() -> None:
    alice, bob = pair()
    early = send(alice, 3)
    for m in early:
        recv(bob, m)
    (reply,) = send(bob, 1)
    recv(alice, reply)
    later = send(alice, 1)
    recv(bob, later[0])
    stolen = DoubleRatchet.from_bytes(bob.to_bytes())  # everything an attacker could take now
    for m in [*early, *later]:
        with pytest.raises(DecryptionFailed):
            recv(stolen, m)
    # Alice's state can't re-derive her own earlier message keys either.
    stolen_alice = DoubleRatchet.from_bytes(alice.to_bytes())
    for m in early:
        with pytest.raises(DecryptionFailed):
            recv(stolen_alice, m)


def _tamper(b: bytes) -> bytes:
    return bytes([b[0] ^ 0x80]) + b[1:]


def test_tampering_is_rejected_and_changes_nothing() -> None:
    alice, bob = pair()
    recv(bob, send(alice, 1)[0])
    (reply,) = send(bob, 1)
    recv(alice, reply)
    header, ct = alice.encrypt(b"the real message", AD)
    forgeries = [
        (header, _tamper(ct), AD),  # ciphertext
        (header, ct[:-1] + bytes([ct[-1] ^ 1]), AD),  # tag
        (header, ct, _tamper(AD)),  # associated data
        (header, ct, AD + b"x"),
        (Header(_tamper(header.dh), header.pn, header.n), ct, AD),  # header: ratchet key
        (Header(header.dh, header.pn + 1, header.n), ct, AD),  # header: PN
        (Header(header.dh, header.pn, header.n + 1), ct, AD),  # header: N
        (Header(os.urandom(32), header.pn, header.n), ct, AD),
        (Header(b"\x00" * 32, header.pn, header.n), ct, AD),  # low-order point
    ]
    before = bob.to_bytes()
    for h, c, ad in forgeries:
        with pytest.raises(DecryptionFailed):
            bob.decrypt(h, c, ad)
        assert bob.to_bytes() == before
    assert bob.decrypt(header, ct, AD) == b"the real message"


def test_header_far_ahead_is_refused_and_changes_nothing() -> None:
    alice, bob = pair()
    recv(bob, send(alice, 1)[0])
    header, ct = alice.encrypt(b"x", AD)
    before = bob.to_bytes()
    with pytest.raises(TooManySkippedMessages):
        bob.decrypt(Header(header.dh, header.pn, header.n + MAX_SKIP + 1), ct, AD)
    assert bob.to_bytes() == before
    # A new ratchet key with a huge PN is refused the same way.
    (reply,) = send(bob, 1)
    recv(alice, reply)
    h2, ct2 = alice.encrypt(b"y", AD)
    before = bob.to_bytes()
    with pytest.raises(TooManySkippedMessages):
        bob.decrypt(Header(h2.dh, 2**32 - 1, h2.n), ct2, AD)
    assert bob.to_bytes() == before
    assert bob.decrypt(header, ct, AD) == b"x"
    assert bob.decrypt(h2, ct2, AD) == b"y"


def test_exactly_max_skip_is_allowed() -> None:
    alice, bob = pair()
    msgs = send(alice, MAX_SKIP + 1)
    assert recv(bob, msgs[-1]) == f"m{MAX_SKIP}".encode()
    assert len(bob.state.skipped) == MAX_SKIP
    assert recv(bob, msgs[0]) == b"m0"


def test_stored_skipped_keys_are_capped_oldest_first() -> None:
    alice, bob = pair()
    per_chain = 900
    chains = []
    for turn in range(3):
        chain = send(alice, per_chain + 1, f"c{turn}-")
        recv(bob, chain[-1])  # skip the other 900
        chains.append(chain)
        (reply,) = send(bob, 1)
        recv(alice, reply)
    assert len(bob.state.skipped) == MAX_STORED_SKIPPED
    evicted = 3 * per_chain - MAX_STORED_SKIPPED  # the oldest 700 of the first chain
    with pytest.raises(DecryptionFailed):
        recv(bob, chains[0][evicted - 1])
    assert recv(bob, chains[0][evicted]) == f"c0-{evicted}".encode()
    assert recv(bob, chains[2][0]) == b"c2-0"


def test_serialise_and_restore_mid_conversation() -> None:
    alice, bob = pair()
    a1 = send(alice, 3)
    recv(bob, a1[2])  # bob holds two skipped keys
    alice = DoubleRatchet.from_bytes(alice.to_bytes())
    bob = DoubleRatchet.from_bytes(bob.to_bytes())
    assert len(bob.state.skipped) == 2
    (b1,) = send(bob, 1)
    assert recv(alice, b1) == b"m0"
    bob = DoubleRatchet.from_bytes(bob.to_bytes())
    assert recv(bob, a1[0]) == b"m0" and recv(bob, a1[1]) == b"m1"
    (a2,) = send(DoubleRatchet.from_bytes(alice.to_bytes()), 1)
    assert recv(DoubleRatchet.from_bytes(bob.to_bytes()), a2) == b"m0"
    assert msgspec.msgpack.decode(bob.to_bytes())["version"] == 1


def test_restore_rejects_garbage_and_unknown_versions() -> None:
    alice, _ = pair()
    raw = msgspec.msgpack.decode(alice.to_bytes())
    raw["version"] = 2
    for data in (b"", b"\x81\xa1x\x01", msgspec.msgpack.encode(raw)):
        with pytest.raises(CryptoError):
            DoubleRatchet.from_bytes(data)


@given(
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)
def test_header_bytes_round_trip(dh: bytes, pn: int, n: int) -> None:
    h = Header(dh, pn, n)
    assert len(h.to_bytes()) == 40
    assert Header.from_bytes(h.to_bytes()) == h


def test_header_wrong_length() -> None:
    for data in (b"", b"\x00" * 39, b"\x00" * 41):
        with pytest.raises(InvalidEnvelope):
            Header.from_bytes(data)
