"""The one path every 1:1 envelope takes through the pairwise sessions (X3DH + Double
Ratchet, common/crypto/session.py): :func:`encrypt_on` / :func:`encrypt_new` to send,
:func:`decrypt_from` to receive.

Synchronous, on :class:`~.cache.Txn` (the cache in its own thread), so a whole batch costs
one thread hand-off (``Cache.call`` / ``Cache.run``); the caller holds the open
transaction (``Cache.transaction``), so no other task or process on the home reads the
same ratchet state meanwhile. ``Client.encrypt_for`` / ``Client.decrypt_from`` are the
async faces, which add the relay round trip for a prekey bundle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..common import frames as f
from ..common.crypto.errors import CryptoError
from ..common.crypto.keys import IdentityKey
from ..common.crypto.session import (
    MAX_PREVIOUS_SESSIONS,
    Session,
    SessionRecord,
    envelope_kind,
)
from ..common.padding import pad

if TYPE_CHECKING:
    from .cache import Txn

__all__ = ["encrypt_on", "encrypt_new", "decrypt_from", "starts_session"]

KEEP_SESSIONS = 1 + MAX_PREVIOUS_SESSIONS  # the current session and the previous ones


def _save(tx: Txn, peer: bytes, record: SessionRecord, now: int) -> None:
    """Store what ``record`` changed, in the order it was used, so the stored order
    (used_at) is the record's: the current one first."""
    for row_id, session in record.changed:
        tx.save_session(peer, row_id, session.to_bytes(), now, keep=KEEP_SESSIONS)
    if record.dropped:
        tx.delete_sessions(record.dropped)


def encrypt_on(tx: Txn, peer: bytes, plaintext: bytes, now: int) -> bytes | None:
    """``plaintext`` padded (common/padding.py: sizes say little) and encrypted on the
    current session with ``peer``, which advances; None if there is no session yet."""
    record = SessionRecord.from_states(tx.sessions(peer))
    if record.current is None:
        return None
    envelope = record.encrypt(pad(plaintext))
    _save(tx, peer, record, now)
    return envelope


def encrypt_new(tx: Txn, identity: IdentityKey, peer: bytes, bundle: f.Bundle,
                plaintext: bytes, now: int) -> bytes:
    """As :func:`encrypt_on` on a new session started from ``peer``'s prekey ``bundle``
    (checked by Session.initiate: the signed prekey must be signed by ``peer``)."""
    record = SessionRecord.from_states(tx.sessions(peer))
    record.install(Session.initiate(
        identity, peer, bundle.spk.key_id, bundle.spk.pub, bundle.spk.sig,
        bundle.otk.key_id if bundle.otk else None, bundle.otk.pub if bundle.otk else None,
    ))
    envelope = record.encrypt(pad(plaintext))
    _save(tx, peer, record, now)
    return envelope


def decrypt_from(tx: Txn, identity: IdentityKey, sender: bytes, envelope: bytes,
                 now: int) -> bytes:
    """Decrypt with the sender's sessions (the one that decrypts becomes current), or
    start one from a prekey envelope; CryptoError if neither works (nothing is stored).

    A prekey envelope whose ephemeral key matches a session we hold belongs to that
    session: it is never used to start a second one, so a replayed first message (which
    X3DH alone can't tell apart without a one-time prekey) fails. The one-time prekey a
    new session used is deleted in the same transaction."""
    record = SessionRecord.from_states(tx.sessions(sender))
    try:
        plaintext, used_otk = record.decrypt(envelope)
    except CryptoError:
        if envelope_kind(envelope) != "prekey":
            raise
        # Perhaps a new session: only now read the private prekeys.
        spks = tx.prekey_privates("spk")
        otks = tx.prekey_privates("otk")
        plaintext, used_otk = record.decrypt(
            envelope, identity=identity, sender=sender,
            spk_private_for=spks.get, otk_private_for=otks.get)
    _save(tx, sender, record, now)
    if used_otk is not None:
        tx.delete_prekey("otk", used_otk)
    return plaintext


def starts_session(body: bytes) -> bool:
    """A prekey envelope (it may start a session). A body that is no envelope at all is
    not: it fails to decrypt like any other."""
    try:
        return envelope_kind(body) == "prekey"
    except CryptoError:
        return False
