"""Group encryption with Sender Keys (Signal's sender-key construction): one signed sending
chain per member and group, its key handed to the other members over the 1:1 sessions.

Each member makes a :class:`SenderKey` with :meth:`SenderKey.create`, sends its
:meth:`~SenderKey.distribution` to every member through the pairwise sessions, and encrypts
each group message once. A receiver keeps one :class:`SenderKey` per (group, member, chain),
made with :meth:`SenderKey.from_distribution`, and finds it by :func:`message_chain_id`.
The state is a versioned msgspec value this module never saves; :meth:`SenderKey.decrypt`
works on a copy and keeps it only on success. docs/crypto.md ("Sender keys") has every byte.
"""

from __future__ import annotations

import os
from typing import Annotated, Final

import msgspec
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.signing import SigningKey, VerifyKey

from .errors import (
    CryptoError,
    DecryptionFailed,
    InvalidEnvelope,
    InvalidSignature,
    TooManySkippedMessages,
)
from .primitives import AEAD, CHAIN_CONSTANT, CHAIN_KDF, XChaCha20Poly1305

__all__ = [
    "GROUP_MESSAGE_VERSION",
    "STATE_VERSION",
    "DISTRIBUTION_VERSION",
    "MAX_SKIP",
    "MAX_STORED_SKIPPED",
    "SENDER_KEY_INFO",
    "SENDER_KEY_AEAD",
    "GroupMessage",
    "SenderKeyDistribution",
    "SenderKeyState",
    "SenderKey",
    "message_chain_id",
]

GROUP_MESSAGE_VERSION: Final = 1
STATE_VERSION: Final = 1
DISTRIBUTION_VERSION: Final = 1
MAX_SKIP: Final = 2000  # most message keys one received message may make us derive ahead
MAX_STORED_SKIPPED: Final = 2000  # most skipped message keys kept per chain; oldest go first

SENDER_KEY_INFO: Final = b"tenchat/sender-key/v1"
SENDER_KEY_AEAD: Final[AEAD] = XChaCha20Poly1305(SENDER_KEY_INFO)
# Domain separation for the signature, so a sender-key signature can't pass for any other
# Ed25519 signature (the signing key is per chain, but be explicit anyway).
_SIG_CONTEXT: Final = b"tenchat/sender-key/sig/v1"

GROUP_ID_LEN: Final = 16
_MAX_U32: Final = 2**32 - 1

_GroupId = Annotated[bytes, msgspec.Meta(min_length=GROUP_ID_LEN, max_length=GROUP_ID_LEN)]
_Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
_Sig64 = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
_U32 = Annotated[int, msgspec.Meta(ge=0, le=_MAX_U32)]
_NextIteration = Annotated[int, msgspec.Meta(ge=0, le=_MAX_U32 + 1)]  # 2**32: chain finished


# --- wire values ---------------------------------------------------------------------------


class GroupMessage(msgspec.Struct, kw_only=True):
    """A group message on the wire: encrypted once for the whole group, signed by the chain."""

    v: int  # GROUP_MESSAGE_VERSION
    chain_id: _U32  # which sending chain (hence which member) this is
    iteration: _U32  # the message's number in that chain
    ciphertext: bytes  # XChaCha20-Poly1305 ciphertext || 16-byte tag
    sig: _Sig64  # Ed25519 over _signed_bytes(...)


class SenderKeyDistribution(msgspec.Struct, kw_only=True):
    """What a member sends (over the 1:1 sessions) so others can read its group messages.

    It carries the chain's *current* key and iteration, so its holder can read messages
    from that iteration on and none before.
    """

    v: int = DISTRIBUTION_VERSION
    group_id: _GroupId
    chain_id: _U32
    iteration: _U32
    chain_key: _Key32
    signing_pub: _Key32  # Ed25519 public key that signs every message of the chain

    def to_bytes(self) -> bytes:
        """MessagePack map; it holds a chain key: send it only inside an E2E session."""
        return _encoder.encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> SenderKeyDistribution:
        """Parse :meth:`to_bytes`; InvalidEnvelope if malformed or of an unknown version."""
        try:
            dist = _distribution_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            raise InvalidEnvelope(f"not a sender-key distribution: {exc}") from None
        if dist.v != DISTRIBUTION_VERSION:
            raise InvalidEnvelope(f"unsupported sender-key distribution version {dist.v}")
        return dist


class SenderKeyState(msgspec.Struct, kw_only=True):
    """One sending chain of one member in one group: ours (with the signing seed) or a
    peer's (signing public key only, plus the keys of messages skipped so far)."""

    version: int = STATE_VERSION
    group_id: _GroupId
    chain_id: _U32
    iteration: _NextIteration  # number of the next message; chain_key is its chain key
    chain_key: _Key32
    signing_private: _Key32 | None = None  # Ed25519 seed; set only on our own chain
    signing_public: _Key32
    # iteration -> message key of messages not received yet, oldest first
    skipped: dict[int, bytes] = {}

    def copy(self) -> SenderKeyState:
        return msgspec.structs.replace(self, skipped=dict(self.skipped))


_encoder = msgspec.msgpack.Encoder()
_message_decoder = msgspec.msgpack.Decoder(GroupMessage)
_distribution_decoder = msgspec.msgpack.Decoder(SenderKeyDistribution)
_state_decoder = msgspec.msgpack.Decoder(SenderKeyState)


# --- the construction ----------------------------------------------------------------------


def _kdf_ck(ck: bytes) -> tuple[bytes, bytes]:
    """Signal's sender chain step: next chain key HMAC(ck, 0x02), message key HMAC(ck, 0x01)."""
    out = CHAIN_KDF.derive(ck, CHAIN_CONSTANT, 64)
    return out[:32], out[32:]


def _aead_ad(group_id: bytes, chain_id: int, iteration: int, associated_data: bytes) -> bytes:
    return group_id + chain_id.to_bytes(4, "big") + iteration.to_bytes(4, "big") + associated_data


def _signed_bytes(
    v: int, group_id: bytes, chain_id: int, iteration: int, ciphertext: bytes, ad: bytes
) -> bytes:
    """What the chain's signing key signs: every field but ``sig``, plus group id and AD.

    The AD is signed too: every member knows the message key, so the AEAD tag alone does
    not stop a member from finding another AD that the same ciphertext authenticates under.
    """
    return b"".join(
        (
            _SIG_CONTEXT,
            v.to_bytes(1, "big"),
            group_id,
            chain_id.to_bytes(4, "big"),
            iteration.to_bytes(4, "big"),
            len(ad).to_bytes(8, "big"),
            ad,
            ciphertext,
        )
    )


def _decode_message(message: bytes) -> GroupMessage:
    try:
        msg = _message_decoder.decode(message)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise InvalidEnvelope(f"not a group message: {exc}") from None
    if msg.v != GROUP_MESSAGE_VERSION:
        raise InvalidEnvelope(f"unsupported group message version {msg.v}")
    return msg


def message_chain_id(message: bytes) -> int:
    """The chain id of a group message, to find the sender's :class:`SenderKey`;
    InvalidEnvelope if the bytes are not a group message of a supported version."""
    return _decode_message(message).chain_id


def _check_len(name: str, value: bytes, length: int) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != length:
        raise CryptoError(f"{name} is {length} bytes")
    return bytes(value)


class SenderKey:
    """One member's sending chain in one group: ours (encrypt) or a peer's (decrypt).

    Save :meth:`to_bytes` after every call that returned normally (it contains secrets:
    store it encrypted); the library saves nothing itself.
    """

    __slots__ = ("state",)

    def __init__(self, state: SenderKeyState) -> None:
        self.state = state

    # --- attributes ---------------------------------------------------------------------

    @property
    def group_id(self) -> bytes:
        return self.state.group_id

    @property
    def chain_id(self) -> int:
        return self.state.chain_id

    @property
    def iteration(self) -> int:
        """The number of the next message of the chain (sent, or expected)."""
        return self.state.iteration

    @property
    def signing_public(self) -> bytes:
        """The Ed25519 public key that signs this chain's messages."""
        return self.state.signing_public

    @property
    def is_own(self) -> bool:
        """True for our own sending chain (made by :meth:`create`)."""
        return self.state.signing_private is not None

    # --- making chains ------------------------------------------------------------------

    @classmethod
    def create(cls, group_id: bytes) -> SenderKey:
        """A fresh sending chain of ours: random chain key, chain id and signing key.

        Call it again to rotate (e.g. when a member leaves): the new chain shares nothing
        with the old one, so only members given its distribution can read it.
        """
        group_id = _check_len("a group id", group_id, GROUP_ID_LEN)
        signing = SigningKey.generate()
        return cls(
            SenderKeyState(
                group_id=group_id,
                chain_id=int.from_bytes(os.urandom(4), "big"),
                iteration=0,
                chain_key=os.urandom(32),
                signing_private=bytes(signing),
                signing_public=bytes(signing.verify_key),
            )
        )

    def distribution(self) -> SenderKeyDistribution:
        """What the other members need to read this chain from its current iteration on."""
        st = self.state
        return SenderKeyDistribution(
            group_id=st.group_id,
            chain_id=st.chain_id,
            iteration=st.iteration,
            chain_key=st.chain_key,
            signing_pub=st.signing_public,
        )

    @classmethod
    def from_distribution(cls, dist: SenderKeyDistribution) -> SenderKey:
        """A receiving chain from a member's distribution; CryptoError if it is malformed."""
        if dist.v != DISTRIBUTION_VERSION:
            raise CryptoError(f"unsupported sender-key distribution version {dist.v}")
        if not 0 <= dist.chain_id <= _MAX_U32 or not 0 <= dist.iteration <= _MAX_U32:
            raise CryptoError("chain id and iteration are uint32")
        return cls(
            SenderKeyState(
                group_id=_check_len("a group id", dist.group_id, GROUP_ID_LEN),
                chain_id=dist.chain_id,
                iteration=dist.iteration,
                chain_key=_check_len("a chain key", dist.chain_key, 32),
                signing_public=_check_len("a signing key", dist.signing_pub, 32),
            )
        )

    # --- messages -----------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        """The group message for ``plaintext``; advances the chain (the used key is gone).

        ``associated_data`` is authenticated, not sent: the receiver must pass the same
        bytes (the client binds group id and sender identity with it). CryptoError on a
        receiving chain or an exhausted one.
        """
        st = self.state
        if st.signing_private is None:
            raise CryptoError("a receiving chain can't send")
        if st.iteration > _MAX_U32:
            raise CryptoError("sending chain exhausted: create a new one")
        ad = bytes(associated_data)
        chain_key, mk = _kdf_ck(st.chain_key)
        iteration = st.iteration
        ciphertext = SENDER_KEY_AEAD.encrypt(
            mk, plaintext, _aead_ad(st.group_id, st.chain_id, iteration, ad)
        )
        v = GROUP_MESSAGE_VERSION
        signed = _signed_bytes(v, st.group_id, st.chain_id, iteration, ciphertext, ad)
        sig = SigningKey(st.signing_private).sign(signed).signature
        st.chain_key, st.iteration = chain_key, iteration + 1
        msg = GroupMessage(
            v=v, chain_id=st.chain_id, iteration=iteration, ciphertext=ciphertext, sig=sig
        )
        return _encoder.encode(msg)

    def decrypt(self, message: bytes, associated_data: bytes = b"") -> bytes:
        """The plaintext of a group message of this chain; the state changes only on success.

        Raises InvalidSignature if the chain's signing key did not sign it (checked first,
        and it covers ``associated_data``); TooManySkippedMessages if it is more than
        MAX_SKIP messages ahead; DecryptionFailed if it is malformed, of another chain,
        already received, from before our distribution, its key was evicted, or it does
        not authenticate; also on our own chain (a sender keeps its own plaintext).
        """
        try:
            msg = _decode_message(message)
        except InvalidEnvelope:
            raise DecryptionFailed("not a group message") from None
        st = self.state.copy()
        if msg.chain_id != st.chain_id:
            raise DecryptionFailed("a message of another chain")
        if st.signing_private is not None:
            raise DecryptionFailed("our own chain: its message keys are gone")
        ad = bytes(associated_data)
        signed = _signed_bytes(msg.v, st.group_id, msg.chain_id, msg.iteration, msg.ciphertext, ad)
        try:
            VerifyKey(st.signing_public).verify(signed, msg.sig)
        except (NaclCryptoError, ValueError, TypeError):
            raise InvalidSignature("group message not signed by the chain's key") from None

        if msg.iteration < st.iteration:
            mk = st.skipped.pop(msg.iteration, None)
            if mk is None:
                # Received already (replay), before our distribution, or evicted.
                raise DecryptionFailed("message key no longer available")
        else:
            if msg.iteration - st.iteration > MAX_SKIP:
                raise TooManySkippedMessages(f"a message more than {MAX_SKIP} ahead")
            while st.iteration < msg.iteration:
                st.chain_key, skipped_mk = _kdf_ck(st.chain_key)
                st.skipped[st.iteration] = skipped_mk
                st.iteration += 1
            st.chain_key, mk = _kdf_ck(st.chain_key)
            st.iteration += 1  # may reach 2**32: the chain is then finished
            while len(st.skipped) > MAX_STORED_SKIPPED:
                del st.skipped[next(iter(st.skipped))]
        plaintext = SENDER_KEY_AEAD.decrypt(
            mk, msg.ciphertext, _aead_ad(st.group_id, msg.chain_id, msg.iteration, ad)
        )
        self.state = st
        return plaintext

    # --- persistence --------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The state as MessagePack (contains secrets: store it encrypted)."""
        return _encoder.encode(self.state)

    @classmethod
    def from_bytes(cls, data: bytes) -> SenderKey:
        """Restore from :meth:`to_bytes`; CryptoError if malformed or of an unknown version."""
        try:
            state = _state_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            raise CryptoError(f"malformed sender-key state: {exc}") from None
        if state.version != STATE_VERSION:
            raise CryptoError(f"unsupported sender-key state version {state.version}")
        if state.signing_private is not None and (
            bytes(SigningKey(state.signing_private).verify_key) != state.signing_public
        ):
            raise CryptoError("malformed sender-key state: signing keys don't match")
        return cls(state)

    def __repr__(self) -> str:
        kind = "own" if self.is_own else "peer"
        return (
            f"SenderKey({kind}, group={self.group_id.hex()}, chain_id={self.chain_id}, "
            f"iteration={self.iteration})"
        )
