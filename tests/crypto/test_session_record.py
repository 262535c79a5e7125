"""A peer's sessions (SessionRecord; issue 12, item 4): two people who start a session at
the same moment both get read, and converge on one session. Pure: no relay, no files."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenchat.common.crypto.errors import CryptoError
from tenchat.common.crypto.keys import IdentityKey, make_one_time_prekeys, make_signed_prekey
from tenchat.common.crypto.session import MAX_PREVIOUS_SESSIONS, Session, SessionRecord


class Party:
    """One user: identity, a signed prekey, one-time prekeys, and a record per peer."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ik = IdentityKey.generate()
        self.spk = make_signed_prekey(self.ik, 1)
        self.otks = {k.key_id: k for k in make_one_time_prekeys(1, 50)}
        self.record = SessionRecord([])
        self.inbox: list[bytes] = []  # envelopes on their way to this party, in order

    def start(self, peer: Party) -> None:
        """Fetch the peer's bundle and start a session (what a first send does)."""
        otk = peer.otks[min(peer.otks)]
        self.record.install(Session.initiate(self.ik, peer.ik.public, 1, peer.spk.public,
                                             peer.spk.sig, otk.key_id, otk.public))

    def send(self, peer: Party, text: str) -> None:
        peer.inbox.append(self.record.encrypt(text.encode()))

    def receive_one(self, sender: Party) -> str:
        envelope = self.inbox.pop(0)
        privates = {k: v.private for k, v in self.otks.items()}
        plaintext, used = self.record.decrypt(
            envelope, identity=self.ik, sender=sender.ik.public,
            spk_private_for={1: self.spk.private}.get, otk_private_for=privates.get)
        if used is not None:
            del self.otks[used]
        return plaintext.decode()


def same_session(a: Party, b: Party) -> bool:
    assert a.record.current is not None and b.record.current is not None
    return a.record.current.ephemeral == b.record.current.ephemeral


def test_simultaneous_first_messages_are_both_read_and_converge() -> None:
    alice, bob = Party("alice"), Party("bob")
    alice.start(bob)
    bob.start(alice)  # before either has read anything
    alice.send(bob, "hi bob")
    bob.send(alice, "hi alice")
    assert alice.receive_one(bob) == "hi alice"
    assert bob.receive_one(alice) == "hi bob"
    assert len(alice.record.sessions) == len(bob.record.sessions) == 2
    assert not same_session(alice, bob)  # each made the other's session current

    # They cross again (each sends before reading): still read, on the two sessions.
    alice.send(bob, "a2")
    bob.send(alice, "b2")
    assert bob.receive_one(alice) == "a2" and alice.receive_one(bob) == "b2"

    # One message each way in turn: both now use one session, and stay on it.
    alice.send(bob, "a3")
    assert bob.receive_one(alice) == "a3"
    assert same_session(alice, bob)
    bob.send(alice, "b3")
    assert alice.receive_one(bob) == "b3"
    for i in range(3):
        alice.send(bob, f"a{4 + i}")
        bob.send(alice, f"b{4 + i}")  # crossing no longer splits them
        assert bob.receive_one(alice) == f"a{4 + i}" and alice.receive_one(bob) == f"b{4 + i}"
        assert same_session(alice, bob)
    assert len(alice.record.sessions) == 2  # the other stays archived, unused


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a>", "b>", ">a", ">b"]), max_size=40))
def test_any_interleaving_after_a_simultaneous_start_reads_everything(ops: list[str]) -> None:
    alice, bob = Party("alice"), Party("bob")
    alice.start(bob)
    bob.start(alice)
    alice.send(bob, "a0")
    bob.send(alice, "b0")
    sent = {"a": ["a0"], "b": ["b0"]}
    got: dict[str, list[str]] = {"a": [], "b": []}
    for op in ops:
        if op == "a>":
            sent["a"].append(f"a{len(sent['a'])}")
            alice.send(bob, sent["a"][-1])
        elif op == "b>":
            sent["b"].append(f"b{len(sent['b'])}")
            bob.send(alice, sent["b"][-1])
        elif op == ">a" and alice.inbox:
            got["b"].append(alice.receive_one(bob))
        elif op == ">b" and bob.inbox:
            got["a"].append(bob.receive_one(alice))
    while alice.inbox or bob.inbox:
        if alice.inbox:
            got["b"].append(alice.receive_one(bob))
        if bob.inbox:
            got["a"].append(bob.receive_one(alice))
    assert got == sent  # every message read, in order
    # A turn each way converges them, whatever happened before.
    alice.send(bob, "x")
    assert bob.receive_one(alice) == "x"
    bob.send(alice, "y")
    assert alice.receive_one(bob) == "y"
    assert same_session(alice, bob)
    assert len(alice.record.sessions) <= 2 and len(bob.record.sessions) <= 2


def test_failed_decrypt_changes_nothing_and_a_replayed_first_message_makes_no_session() -> None:
    alice, bob = Party("alice"), Party("bob")
    alice.start(bob)
    alice.send(bob, "first")
    first = bob.inbox[0]
    assert bob.receive_one(alice) == "first"
    before = [s.to_bytes() for s in bob.record.sessions]
    for bad in (first, first[:-1] + bytes([first[-1] ^ 1]), b"not an envelope"):
        with pytest.raises(CryptoError):
            bob.record.decrypt(bad, identity=bob.ik, sender=alice.ik.public,
                               spk_private_for={1: bob.spk.private}.get,
                               otk_private_for=lambda _: None)
    assert [s.to_bytes() for s in bob.record.sessions] == before
    assert bob.record.changed == [(None, bob.record.current)]  # only the first one's


def test_archive_is_bounded_and_reports_what_to_delete() -> None:
    bob = Party("bob")
    rows: list[tuple[int | None, Session]] = []  # as stored: (row id, session), current first
    for row_id in range(MAX_PREVIOUS_SESSIONS + 5):  # a peer who reinstalls again and again
        alice = Party("alice")
        alice.start(bob)
        alice.send(bob, "again")
        bob.record = SessionRecord(rows)
        assert bob.receive_one(alice) == "again"
        full = len(rows) == 1 + MAX_PREVIOUS_SESSIONS
        assert bob.record.dropped == ([rows[-1][0]] if full else [])  # least recently used
        assert bob.record.changed == [(None, bob.record.current)]  # the new one to insert
        rows = [(row_id, bob.record.current)] + [r for r in rows
                                                  if r[0] not in bob.record.dropped]
        assert [s for _, s in rows] == bob.record.sessions
    assert len(rows) == 1 + MAX_PREVIOUS_SESSIONS


def test_decrypt_without_lookups_never_starts_a_session() -> None:
    alice, bob = Party("alice"), Party("bob")
    alice.start(bob)
    alice.send(bob, "hello")
    with pytest.raises(CryptoError):
        bob.record.decrypt(bob.inbox[0])
    assert bob.record.sessions == []
    assert bob.receive_one(alice) == "hello"
