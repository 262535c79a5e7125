"""A 1:1 end-to-end session: X3DH to start it, the Double Ratchet after; bytes in, bytes out.

This is the recipe boundary the client uses. Every failure to decrypt is the one
opaque :class:`~tenchat.common.crypto.errors.DecryptionFailed`, whatever check failed.

Envelopes are MessagePack maps (msgspec), ``"t"`` naming the kind::

    prekey:  {"t": "prekey", "v": 1, "ik": IK_A, "ek": EK_A, "spk": spk_id, "otk": otk_id|nil,
              "h": header, "ct": ciphertext}
    ratchet: {"t": "ratchet", "v": 1, "h": header, "ct": ciphertext}

``ik`` is the initiator's Ed25519 identity key, ``ek`` its X3DH ephemeral X25519 key,
``h`` the 40-byte ratchet header and ``ct`` the XChaCha20-Poly1305 ciphertext whose
associated data is ``AD || h`` (``AD`` from X3DH). docs/crypto.md has every byte.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Final, Literal

import msgspec

from .errors import CryptoError, DecryptionFailed, InvalidEnvelope
from .keys import IdentityKey, X25519KeyPair
from .ratchet import DoubleRatchet, Header, RatchetState
from .x3dh import initiate as x3dh_initiate
from .x3dh import respond as x3dh_respond

__all__ = [
    "ENVELOPE_VERSION",
    "SESSION_VERSION",
    "PrekeyEnvelope",
    "RatchetEnvelope",
    "MAX_PREVIOUS_SESSIONS",
    "Session",
    "SessionRecord",
    "envelope_kind",
    "envelope_ephemeral",
]

ENVELOPE_VERSION: Final = 1
SESSION_VERSION: Final = 1
MAX_PREVIOUS_SESSIONS: Final = 10  # archived sessions kept per peer besides the current one

_Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
_Header = Annotated[bytes, msgspec.Meta(min_length=Header.SIZE, max_length=Header.SIZE)]
_KeyId = Annotated[int, msgspec.Meta(ge=0, lt=2**32)]


class PrekeyEnvelope(msgspec.Struct, tag_field="t", tag="prekey"):
    """The initiator's envelope until the responder has answered: carries the X3DH inputs."""

    v: int
    ik: _Key32  # initiator's Ed25519 identity key
    ek: _Key32  # initiator's X3DH ephemeral X25519 public key
    spk: _KeyId  # id of the responder's signed prekey that was used
    otk: _KeyId | None  # id of the responder's one-time prekey, nil if none was used
    h: _Header  # ratchet header bytes
    ct: bytes  # ciphertext


class RatchetEnvelope(msgspec.Struct, tag_field="t", tag="ratchet"):
    """A Double Ratchet message of an established session."""

    v: int
    h: _Header
    ct: bytes


Envelope = PrekeyEnvelope | RatchetEnvelope

_encoder = msgspec.msgpack.Encoder()
_envelope_decoder = msgspec.msgpack.Decoder(Envelope)


def _decode(envelope: bytes) -> Envelope:
    try:
        env = _envelope_decoder.decode(envelope)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise InvalidEnvelope(f"not an envelope: {exc}") from None
    if env.v != ENVELOPE_VERSION:
        raise InvalidEnvelope(f"unsupported envelope version {env.v}")
    return env


def envelope_kind(envelope: bytes) -> Literal["prekey", "ratchet"]:
    """``"prekey"`` or ``"ratchet"``; InvalidEnvelope for anything else."""
    return "prekey" if isinstance(_decode(envelope), PrekeyEnvelope) else "ratchet"


def envelope_ephemeral(envelope: bytes) -> bytes | None:
    """The X3DH ephemeral key of a prekey envelope (None for a ratchet envelope).

    Compare it with :attr:`Session.ephemeral` to tell whether a prekey envelope belongs
    to an existing session (:meth:`Session.decrypt`) or starts a new one
    (:meth:`Session.respond`). InvalidEnvelope if malformed.
    """
    env = _decode(envelope)
    return env.ek if isinstance(env, PrekeyEnvelope) else None


class _PendingPrekey(msgspec.Struct):
    """What the initiator repeats in every envelope until the peer has answered."""

    spk_id: _KeyId
    otk_id: _KeyId | None


class _SessionState(msgspec.Struct, kw_only=True):
    version: int = SESSION_VERSION
    local: _Key32  # our identity key
    peer: _Key32  # the peer's identity key
    ad: bytes  # X3DH associated data: IK_initiator || IK_responder
    ephemeral: _Key32  # the X3DH ephemeral public key that created this session
    initiator: bool
    pending: _PendingPrekey | None = None  # set until the initiator receives a message
    used_otk_id: _KeyId | None = None  # responder: the one-time prekey this session consumed
    ratchet: RatchetState


_state_decoder = msgspec.msgpack.Decoder(_SessionState)


class Session:
    """One end of an end-to-end session with ``peer``. Save :meth:`to_bytes` after every call
    that returned normally; the library saves nothing itself."""

    __slots__ = ("_state", "_ratchet")

    def __init__(self, state: _SessionState) -> None:
        self._state = state
        self._ratchet = DoubleRatchet(state.ratchet)

    # --- attributes ---------------------------------------------------------------------

    @property
    def peer(self) -> bytes:
        """The peer's identity key (Ed25519 public key = user id)."""
        return self._state.peer

    @property
    def ephemeral(self) -> bytes:
        """The X3DH ephemeral key that created this session (ours if we initiated it)."""
        return self._state.ephemeral

    @property
    def is_initiator(self) -> bool:
        return self._state.initiator

    @property
    def used_otk_id(self) -> int | None:
        """For a session made by :meth:`respond`: the id of the one-time prekey it used (the
        caller deletes that private key); None if none was used or we initiated."""
        return self._state.used_otk_id

    @property
    def associated_data(self) -> bytes:
        """The X3DH AD: initiator's identity key || responder's identity key."""
        return self._state.ad

    # --- starting a session -------------------------------------------------------------

    @classmethod
    def initiate(
        cls,
        identity: IdentityKey,
        peer_identity: bytes,
        spk_id: int,
        spk_pub: bytes,
        spk_sig: bytes,
        otk_id: int | None,
        otk_pub: bytes | None,
    ) -> Session:
        """Start a session from the peer's prekey bundle; InvalidSignature if its signed
        prekey is not signed by ``peer_identity``."""
        if (otk_id is None) != (otk_pub is None):
            raise CryptoError("give both otk_id and otk_pub, or neither")
        x3dh = x3dh_initiate(identity, peer_identity, spk_pub, spk_sig, otk_pub)
        ratchet = DoubleRatchet.init_sender(x3dh.shared_key, spk_pub)
        state = _SessionState(
            local=identity.public,
            peer=bytes(peer_identity),
            ad=x3dh.associated_data,
            ephemeral=x3dh.ephemeral_pub,
            initiator=True,
            pending=_PendingPrekey(spk_id=spk_id, otk_id=otk_id),
            ratchet=ratchet.state,
        )
        return cls(state)

    @classmethod
    def respond(
        cls,
        identity: IdentityKey,
        sender: bytes,
        envelope: bytes,
        spk_private_for: Callable[[int], bytes | None],
        otk_private_for: Callable[[int], bytes | None],
    ) -> tuple[Session, bytes]:
        """Accept a prekey envelope from ``sender`` (the relay-reported sender).

        Returns the new session and the first plaintext. ``session.used_otk_id`` names the
        one-time prekey that was used: delete its private key once the session is saved.
        The lookups return None for an unknown key id. Raises DecryptionFailed for any
        failure, including an envelope whose identity key is not ``sender``.
        """
        try:
            env = _decode(envelope)
            if not isinstance(env, PrekeyEnvelope) or env.ik != sender:
                raise DecryptionFailed("not a prekey envelope from this sender")
            spk_private = spk_private_for(env.spk)
            otk_private = None if env.otk is None else otk_private_for(env.otk)
            if spk_private is None or (env.otk is not None and otk_private is None):
                raise DecryptionFailed("unknown prekey")
            x3dh = x3dh_respond(identity, env.ik, spk_private, otk_private, env.ek)
            ratchet = DoubleRatchet.init_receiver(
                x3dh.shared_key, X25519KeyPair.from_private(spk_private)
            )
            plaintext = ratchet.decrypt(Header.from_bytes(env.h), env.ct, x3dh.associated_data)
        except CryptoError:
            raise DecryptionFailed("cannot decrypt") from None
        state = _SessionState(
            local=identity.public,
            peer=env.ik,
            ad=x3dh.associated_data,
            ephemeral=env.ek,
            initiator=False,
            used_otk_id=env.otk,
            ratchet=ratchet.state,
        )
        return cls(state), plaintext

    # --- messages -----------------------------------------------------------------------

    def encrypt(self, plaintext: bytes) -> bytes:
        """The envelope of the next message: a prekey envelope until the peer has answered."""
        header, ct = self._ratchet.encrypt(plaintext, self._state.ad)
        self._state.ratchet = self._ratchet.state
        pending = self._state.pending
        env: Envelope
        if pending is not None:
            env = PrekeyEnvelope(
                v=ENVELOPE_VERSION,
                ik=self._state.local,
                ek=self._state.ephemeral,
                spk=pending.spk_id,
                otk=pending.otk_id,
                h=header.to_bytes(),
                ct=ct,
            )
        else:
            env = RatchetEnvelope(v=ENVELOPE_VERSION, h=header.to_bytes(), ct=ct)
        return _encoder.encode(env)

    def decrypt(self, envelope: bytes) -> bytes:
        """Decrypt a ratchet envelope, or a prekey envelope of this same session (same
        ephemeral key); DecryptionFailed otherwise, and the session is unchanged."""
        try:
            env = _decode(envelope)
            if isinstance(env, PrekeyEnvelope) and (
                self._state.initiator
                or env.ik != self._state.peer
                or env.ek != self._state.ephemeral
            ):
                raise DecryptionFailed("prekey envelope of another session")
            plaintext = self._ratchet.decrypt(Header.from_bytes(env.h), env.ct, self._state.ad)
        except CryptoError:
            raise DecryptionFailed("cannot decrypt") from None
        self._state.ratchet = self._ratchet.state
        self._state.pending = None  # the peer has the session: plain ratchet envelopes from now
        return plaintext

    # --- persistence --------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The whole session as MessagePack (contains secrets: store it encrypted)."""
        return _encoder.encode(self._state)

    @classmethod
    def from_bytes(cls, data: bytes) -> Session:
        """Restore from :meth:`to_bytes`; CryptoError if malformed or of an unknown version."""
        try:
            state = _state_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            raise CryptoError(f"malformed session state: {exc}") from None
        if state.version != SESSION_VERSION or state.ratchet.version != 1:
            raise CryptoError("unsupported session state version")
        return cls(state)

    def __repr__(self) -> str:
        return f"Session(peer={self.peer.hex()}, initiator={self.is_initiator})"


class SessionRecord:
    """All sessions with one peer, the current one first (Signal's session record).

    Normally a peer has one session. A second appears when both sides start one at the same
    moment (each sends a prekey envelope before reading the other's), or when the peer
    starts over (a new install). Then:

    * :meth:`encrypt` always uses the **current** session;
    * :meth:`decrypt` tries the current session, then the archived ones (newest first),
      each on a copy (a failed try changes nothing); the one that decrypts becomes current.
      A prekey envelope with an ephemeral key no session has starts a new session
      (:meth:`Session.respond`), which becomes current; the old ones are archived.
    * at most :data:`MAX_PREVIOUS_SESSIONS` archived sessions are kept; the least recently
      used goes first.

    Converging: after a simultaneous start, each side's current session is the one it
    started last or read last. As soon as one side reads a message on a session, that
    session is current on both ends — so every message is read, and the two settle on one
    session after a message each way (if neither keeps sending before reading; then they
    keep reading each other on two sessions until one does).

    Entries carry an opaque ``tag`` (the client's row id; None for a session made here) so
    the caller can tell which to store: :attr:`changed` lists them, :attr:`dropped` the tags
    of sessions to delete.
    """

    __slots__ = ("_entries", "changed", "dropped", "limit")

    def __init__(self, sessions: list[tuple[int | None, Session]], *,
                 limit: int = MAX_PREVIOUS_SESSIONS) -> None:
        self._entries: list[list] = [[tag, s] for tag, s in sessions]  # current first
        self.limit = limit
        self.changed: list[tuple[int | None, Session]] = []
        self.dropped: list[int] = []

    @classmethod
    def from_states(cls, rows: list[tuple[int, bytes]], *,
                    limit: int = MAX_PREVIOUS_SESSIONS) -> SessionRecord:
        """From stored (tag, :meth:`Session.to_bytes`) pairs, current first."""
        return cls([(tag, Session.from_bytes(state)) for tag, state in rows], limit=limit)

    @property
    def current(self) -> Session | None:
        return self._entries[0][1] if self._entries else None

    @property
    def sessions(self) -> list[Session]:
        """Current first, then the archived ones, most recently used first."""
        return [e[1] for e in self._entries]

    def _touch(self, index: int) -> None:
        entry = self._entries.pop(index)
        self._entries.insert(0, entry)
        self.changed = [c for c in self.changed if c[1] is not entry[1]]
        self.changed.append((entry[0], entry[1]))

    def install(self, session: Session) -> None:
        """Make ``session`` (a new one: :meth:`Session.initiate`) current; archive the rest."""
        self._entries.insert(0, [None, session])
        self.changed.append((None, session))
        while len(self._entries) > 1 + self.limit:
            tag, old = self._entries.pop()
            if tag is not None:
                self.dropped.append(tag)
            self.changed = [c for c in self.changed if c[1] is not old]

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt on the current session; CryptoError if there is none."""
        if not self._entries:
            raise CryptoError("no session with this peer")
        envelope = self._entries[0][1].encrypt(plaintext)
        self._touch(0)
        return envelope

    def decrypt(
        self,
        envelope: bytes,
        *,
        identity: IdentityKey | None = None,
        sender: bytes | None = None,
        spk_private_for: Callable[[int], bytes | None] | None = None,
        otk_private_for: Callable[[int], bytes | None] | None = None,
    ) -> tuple[bytes, int | None]:
        """(plaintext, id of the one-time prekey a new session used — delete its private key
        once saved — or None). A prekey envelope of an unknown session starts one only if
        ``identity``, ``sender`` and both lookups are given. DecryptionFailed (or
        InvalidEnvelope) otherwise; the record is then unchanged."""
        ephemeral = envelope_ephemeral(envelope)
        matching = [i for i, (_, s) in enumerate(self._entries)
                    if ephemeral is None or s.ephemeral == ephemeral]
        for index in matching:
            try:
                plaintext = self._entries[index][1].decrypt(envelope)
            except CryptoError:
                continue
            self._touch(index)
            return plaintext, None
        # A prekey envelope of a session we hold is never used to start a second one (a
        # replayed first message fails instead of making a session).
        if ephemeral is None or matching or identity is None or sender is None \
                or spk_private_for is None or otk_private_for is None:
            raise DecryptionFailed("no session decrypts this message")
        session, plaintext = Session.respond(identity, sender, envelope, spk_private_for,
                                             otk_private_for)
        self.install(session)
        return plaintext, session.used_otk_id
