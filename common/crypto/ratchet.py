"""The Double Ratchet (Signal spec, revision 4) over X25519, HKDF-SHA256 and XChaCha20-Poly1305.

The state is a versioned msgspec value that this module never saves itself.
:meth:`DoubleRatchet.decrypt` works on a copy of the state and keeps it only when the
message authenticates, so a forged, replayed or corrupted message changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Final

import msgspec

from .errors import CryptoError, DecryptionFailed, InvalidEnvelope, TooManySkippedMessages
from .keys import X25519KeyPair
from .primitives import CHAIN_CONSTANT, CHAIN_KDF, MESSAGE_AEAD, ROOT_KDF, x25519

__all__ = [
    "MAX_SKIP",
    "MAX_STORED_SKIPPED",
    "STATE_VERSION",
    "Header",
    "RatchetState",
    "DoubleRatchet",
]

MAX_SKIP: Final = 1000  # most message keys one received header may make us skip (spec MAX_SKIP)
MAX_STORED_SKIPPED: Final = 2000  # most skipped message keys kept per session; oldest go first
STATE_VERSION: Final = 1

_Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
_Counter = Annotated[int, msgspec.Meta(ge=0, lt=2**32)]


@dataclass(frozen=True, slots=True)
class Header:
    """A message header: the sender's ratchet public key, PN and N.

    Bytes (40): ``dh`` (32) || ``pn`` (uint32 big-endian) || ``n`` (uint32 big-endian).
    """

    dh: bytes  # sender's current ratchet public key
    pn: int  # number of messages in the sender's previous sending chain
    n: int  # number of this message in the current sending chain

    SIZE: ClassVar[int] = 40

    def to_bytes(self) -> bytes:
        return self.dh + self.pn.to_bytes(4, "big") + self.n.to_bytes(4, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> Header:
        """Parse 40 header bytes; InvalidEnvelope if the length is wrong."""
        if len(data) != cls.SIZE:
            raise InvalidEnvelope("a ratchet header is 40 bytes")
        pn, n = int.from_bytes(data[32:36], "big"), int.from_bytes(data[36:40], "big")
        return cls(bytes(data[:32]), pn, n)


def _skipped_key(dh: bytes, n: int) -> bytes:
    return dh + n.to_bytes(4, "big")


class RatchetState(msgspec.Struct, kw_only=True):
    """The Double Ratchet state of one session, in the spec's names."""

    version: int = STATE_VERSION
    dhs_private: _Key32  # DHs: our current ratchet key pair
    dhs_public: _Key32
    dhr: _Key32 | None = None  # DHr: the peer's current ratchet public key
    rk: _Key32  # RK: root key
    cks: _Key32 | None = None  # CKs: sending chain key
    ckr: _Key32 | None = None  # CKr: receiving chain key
    ns: _Counter = 0  # Ns: messages sent in the current sending chain
    nr: _Counter = 0  # Nr: messages received in the current receiving chain
    pn: _Counter = 0  # PN: messages in the previous sending chain
    # MKSKIPPED: (DHr || uint32-be N) -> message key, oldest first (dicts keep insertion order)
    skipped: dict[bytes, bytes] = {}

    def copy(self) -> RatchetState:
        return msgspec.structs.replace(self, skipped=dict(self.skipped))


_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(RatchetState)


def _kdf_rk(rk: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    out = ROOT_KDF.derive(rk, dh_out, 64)
    return out[:32], out[32:]


def _kdf_ck(ck: bytes) -> tuple[bytes, bytes]:
    out = CHAIN_KDF.derive(ck, CHAIN_CONSTANT, 64)
    return out[:32], out[32:]


def _skip_message_keys(state: RatchetState, until: int) -> None:
    if state.ckr is None or state.dhr is None:
        return
    if until > state.nr + MAX_SKIP:
        raise TooManySkippedMessages(f"a header asks to skip more than {MAX_SKIP} messages")
    while state.nr < until:
        state.ckr, mk = _kdf_ck(state.ckr)
        state.skipped[_skipped_key(state.dhr, state.nr)] = mk
        state.nr += 1
    while len(state.skipped) > MAX_STORED_SKIPPED:
        del state.skipped[next(iter(state.skipped))]


def _dh_ratchet(state: RatchetState, header: Header) -> None:
    state.pn = state.ns
    state.ns = 0
    state.nr = 0
    state.dhr = header.dh
    state.rk, state.ckr = _kdf_rk(state.rk, x25519(state.dhs_private, state.dhr))
    fresh = X25519KeyPair.generate()
    state.dhs_private, state.dhs_public = fresh.private, fresh.public
    state.rk, state.cks = _kdf_rk(state.rk, x25519(state.dhs_private, state.dhr))


class DoubleRatchet:
    """One party's Double Ratchet. Associated data of a message = ``associated_data || header``."""

    __slots__ = ("state",)

    def __init__(self, state: RatchetState) -> None:
        self.state = state

    @classmethod
    def init_sender(cls, shared_key: bytes, peer_ratchet_pub: bytes) -> DoubleRatchet:
        """Alice: ``peer_ratchet_pub`` is Bob's signed prekey, ``shared_key`` the X3DH SK."""
        if len(shared_key) != 32 or len(peer_ratchet_pub) != 32:
            raise CryptoError("shared key and ratchet key are 32 bytes")
        dhs = X25519KeyPair.generate()
        rk, cks = _kdf_rk(shared_key, x25519(dhs.private, peer_ratchet_pub))
        return cls(
            RatchetState(
                dhs_private=dhs.private, dhs_public=dhs.public, dhr=peer_ratchet_pub, rk=rk, cks=cks
            )
        )

    @classmethod
    def init_receiver(cls, shared_key: bytes, own_ratchet_keypair: X25519KeyPair) -> DoubleRatchet:
        """Bob: ``own_ratchet_keypair`` is his signed prekey pair; he can send after receiving."""
        if len(shared_key) != 32:
            raise CryptoError("the shared key is 32 bytes")
        return cls(
            RatchetState(
                dhs_private=own_ratchet_keypair.private,
                dhs_public=own_ratchet_keypair.public,
                rk=shared_key,
            )
        )

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> tuple[Header, bytes]:
        """Encrypt the next message; CryptoError if no sending chain exists yet (Bob, before
        his first received message)."""
        st = self.state
        if st.cks is None:
            raise CryptoError("no sending chain yet: receive a message first")
        if st.ns >= 2**32 - 1:
            raise CryptoError("sending chain exhausted")
        st.cks, mk = _kdf_ck(st.cks)
        header = Header(st.dhs_public, st.pn, st.ns)
        st.ns += 1
        return header, MESSAGE_AEAD.encrypt(mk, plaintext, associated_data + header.to_bytes())

    def decrypt(self, header: Header, ciphertext: bytes, associated_data: bytes) -> bytes:
        """Decrypt a message; on DecryptionFailed or TooManySkippedMessages nothing changes."""
        st = self.state.copy()
        key = _skipped_key(header.dh, header.n)
        mk = st.skipped.pop(key, None)
        if mk is None:
            try:
                if header.dh != st.dhr:
                    _skip_message_keys(st, header.pn)
                    _dh_ratchet(st, header)
                _skip_message_keys(st, header.n)
            except TooManySkippedMessages:
                raise
            except CryptoError:
                raise DecryptionFailed("bad ratchet key") from None
            if header.n < st.nr or st.ckr is None:
                # Already received (replay) or its key has been deleted: forward secrecy.
                raise DecryptionFailed("message key no longer available")
            st.ckr, mk = _kdf_ck(st.ckr)
            st.nr += 1
        plaintext = MESSAGE_AEAD.decrypt(mk, ciphertext, associated_data + header.to_bytes())
        self.state = st
        return plaintext

    def to_bytes(self) -> bytes:
        """The state as MessagePack (a map; see docs/crypto.md)."""
        return _encoder.encode(self.state)

    @classmethod
    def from_bytes(cls, data: bytes) -> DoubleRatchet:
        """Restore from :meth:`to_bytes`; CryptoError if malformed or of an unknown version."""
        try:
            state = _state_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            raise CryptoError(f"malformed ratchet state: {exc}") from None
        if state.version != STATE_VERSION:
            raise CryptoError(f"unsupported ratchet state version {state.version}")
        return cls(state)
