"""The social layer's signed public records: profiles, follows and follow approvals.

Each record is the MessagePack of a struct (exactly as signed) plus an Ed25519
signature by its author over a domain-separated message, so a signature made for
one kind of record never verifies as another. The relay checks signatures before
storing, and every client checks them again before showing anything (DESIGN.md:
the relay is untrusted). Pure: encode, sign, verify; clocks are arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Final, TypeVar

import msgspec

from .crypto.media import MediaRef
from .errors import ErrorCode, ProtocolError
from .identity import verify_signature

__all__ = [
    "MAX_DISPLAY_NAME", "MAX_BIO", "MAX_RECORD",
    "Profile", "Follow", "Approval", "SignedRecord",
    "profile_message", "follow_message", "approval_message",
    "sign_profile", "sign_follow", "sign_approval",
    "open_profile", "open_follow", "open_approval",
]

MAX_DISPLAY_NAME: Final = 64  # characters
MAX_BIO: Final = 500  # characters
MAX_RECORD: Final = 8 * 1024  # bytes of one signed record on the wire

Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Sig64 = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
Time = Annotated[int, msgspec.Meta(ge=0)]

Sign = Callable[[bytes], bytes]


class Profile(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """A user's public profile. Everything here is public, the avatar's key included:
    the avatar blob stays ciphertext on the relay like every blob, and anyone who can
    read the profile can open it."""

    user: Key32  # whose profile; must be the signer
    updated_at: Time  # the author's clock, ms; the newest record wins
    display_name: Annotated[str, msgspec.Meta(max_length=MAX_DISPLAY_NAME)] = ""
    bio: Annotated[str, msgspec.Meta(max_length=MAX_BIO)] = ""
    avatar: MediaRef | None = None  # a sealed image blob and the key that opens it
    private: bool = False  # a private account approves each follower


class Follow(msgspec.Struct, forbid_unknown_fields=True):
    """``follower`` asks to follow ``target`` (signed by the follower)."""

    follower: Key32
    target: Key32
    at: Time  # the follower's clock, ms


class Approval(msgspec.Struct, forbid_unknown_fields=True):
    """``owner`` (a private account) lets ``follower`` follow them (signed by the owner)."""

    owner: Key32
    follower: Key32
    at: Time


class SignedRecord(msgspec.Struct, forbid_unknown_fields=True):
    body: bytes  # MessagePack of a Profile / Follow / Approval, exactly as signed
    sig: Sig64


def profile_message(body: bytes) -> bytes:
    return b"tenchat/profile/v1\x00" + body


def follow_message(body: bytes) -> bytes:
    return b"tenchat/follow/v1\x00" + body


def approval_message(body: bytes) -> bytes:
    return b"tenchat/follow-approve/v1\x00" + body


_enc = msgspec.msgpack.Encoder()
_signed_dec = msgspec.msgpack.Decoder(SignedRecord)
R = TypeVar("R", bound=msgspec.Struct)


def _sign(body: msgspec.Struct, message: Callable[[bytes], bytes], sign: Sign) -> bytes:
    data = _enc.encode(body)
    return _enc.encode(SignedRecord(body=data, sig=sign(message(data))))


def sign_profile(profile: Profile, sign: Sign) -> bytes:
    """The record bytes of ``profile`` signed with ``sign(bytes) -> 64-byte signature``."""
    return _sign(profile, profile_message, sign)


def sign_follow(follow: Follow, sign: Sign) -> bytes:
    return _sign(follow, follow_message, sign)


def sign_approval(approval: Approval, sign: Sign) -> bytes:
    return _sign(approval, approval_message, sign)


def _open(record: bytes, kind: type[R], message: Callable[[bytes], bytes],
          signer: Callable[[R], bytes]) -> R:
    what = kind.__name__.lower()
    try:
        signed = _signed_dec.decode(record)
        body = msgspec.msgpack.decode(signed.body, type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"bad {what} record: {exc}") from None
    if not verify_signature(signer(body), message(signed.body), signed.sig):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, f"{what} record not signed by its author")
    return body


def open_profile(record: bytes) -> Profile:
    """Decode a profile record and verify it is signed by ``profile.user``;
    ProtocolError(malformed | bad_signature)."""
    return _open(record, Profile, profile_message, lambda p: p.user)


def open_follow(record: bytes) -> Follow:
    """Decode a follow record and verify it is signed by ``follow.follower``."""
    return _open(record, Follow, follow_message, lambda r: r.follower)


def open_approval(record: bytes) -> Approval:
    """Decode an approval record and verify it is signed by ``approval.owner``."""
    return _open(record, Approval, approval_message, lambda r: r.owner)
