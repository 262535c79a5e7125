"""The one list of wire error codes, and the exception tree of tenchat.

    TenchatError
    ├── ProtocolError        a frame or value breaks the protocol; carries a wire ``code``
    │   └── (raised with codes from :class:`ErrorCode`)
    └── CryptoError          see :mod:`tenchat.common.crypto.errors`

Protocol errors travel as ``error`` frames; the ``code`` is stable and
documented in ``docs/protocol.md``; the ``message`` is for humans only.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["ErrorCode", "TenchatError", "ProtocolError"]


class ErrorCode(enum.StrEnum):
    """Every code an ``error`` frame may carry. Never renumber or reuse one."""

    MALFORMED = "malformed"  # not MessagePack, not a map, or a field of the wrong type
    TOO_LARGE = "too_large"  # the frame is over the relay's max_frame
    UNKNOWN_TYPE = "unknown_type"  # the frame's "t" names no frame the relay knows
    UNSUPPORTED_VERSION = "unsupported_version"  # hello named no version the relay speaks
    PROTOCOL = "protocol"  # a frame out of sequence (e.g. auth before hello)
    UNAUTHENTICATED = "unauthenticated"  # this frame needs an authenticated connection
    AUTH_FAILED = "auth_failed"  # the challenge signature does not verify
    FORBIDDEN = "forbidden"  # acting for another identity or on their data
    BAD_SIGNATURE = "bad_signature"  # a signed record does not verify
    BAD_HANDLE = "bad_handle"  # the handle is not valid (see the handle rules)
    HANDLE_TAKEN = "handle_taken"  # another identity holds that handle
    NOT_FOUND = "not_found"  # unknown handle, user, prekey bundle or message
    QUEUE_FULL = "queue_full"  # the recipient's queue is at its limit
    RATE_LIMITED = "rate_limited"  # too many frames; retry later
    QUOTA_EXCEEDED = "quota_exceeded"  # the identity's storage quota is used up
    HASH_MISMATCH = "hash_mismatch"  # an uploaded blob does not hash to the id it was sent as
    EXPIRED = "expired"  # a story already expired, or set to live longer than 24 h
    UNAVAILABLE = "unavailable"  # the relay is shutting down; retry on another connection
    INTERNAL = "internal"  # a bug in the relay; the frame changed nothing
    STORAGE_FULL = "storage_full"  # the relay can't write (disk full); nothing stored, retry
    INVITE_REQUIRED = "invite_required"  # an invite-only relay: register with an invite first
    BAD_INVITE = "bad_invite"  # the invite code is unknown, used or expired
    BANNED = "banned"  # the identity is banned from this relay
    HANDLE_RESERVED = "handle_reserved"  # the handle is on the relay's reserved list
    POW_REQUIRED = "pow_required"  # register without the proof-of-work welcome.pow asks
    QUEUE_SHARE = "queue_share"  # the sender holds its share of the recipient's queue
    BAD_REACTION = "bad_reaction"  # a reaction is not exactly one emoji
    TOO_MANY_REACTIONS = "too_many_reactions"  # the author has reactions_max on the post
    ACCESS_DENIED = "access_denied"  # a sealed_send without the recipient's access key


class TenchatError(Exception):
    """Base of every error tenchat raises on purpose."""


class ProtocolError(TenchatError):
    """A frame or a value violates the protocol."""

    def __init__(self, code: ErrorCode | str, message: str = "", *,
                 retry_after: int = 0) -> None:
        self.code = ErrorCode(code) if code in ErrorCode._value2member_map_ else code
        self.message = message or str(code)
        self.retry_after = retry_after  # rate_limited: ms until a retry may succeed
        super().__init__(f"{self.code}: {self.message}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its attributes (a subclass's too), not as its one-string args: the
        # relay's SQLite writer process answers a refused write with it.
        return _restore_error, (type(self), self.args, self.__dict__)


def _restore_error(cls: type[ProtocolError], args: tuple[Any, ...],
                   state: dict[str, Any]) -> ProtocolError:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc
