"""The exceptions of the end-to-end crypto.

    TenchatError                    (tenchat.common.errors)
    └── CryptoError                 any failure of the crypto layer
        ├── InvalidSignature        a signed prekey's signature does not verify
        ├── DecryptionFailed        a message can't be decrypted; the one opaque error of
        │                           :class:`~tenchat.common.crypto.session.Session`
        ├── TooManySkippedMessages  a header asks to skip more message keys than allowed
        └── InvalidEnvelope         bytes that are not a tenchat envelope

Below the session boundary the errors are specific, so tests and the ratchet can
tell them apart; :class:`~tenchat.common.crypto.session.Session` turns every failure
into :class:`DecryptionFailed` so a caller can't leak which check failed.
"""

from __future__ import annotations

from ..errors import TenchatError

__all__ = [
    "CryptoError",
    "InvalidSignature",
    "DecryptionFailed",
    "TooManySkippedMessages",
    "InvalidEnvelope",
]


class CryptoError(TenchatError):
    """Base of every error raised by :mod:`tenchat.common.crypto`."""


class InvalidSignature(CryptoError):
    """A signature (e.g. over a signed prekey) does not verify."""


class DecryptionFailed(CryptoError):
    """A ciphertext, header or associated data failed to authenticate, or was replayed."""


class TooManySkippedMessages(CryptoError):
    """A header claims a message number too far ahead of the receiving chain."""


class InvalidEnvelope(CryptoError):
    """The bytes are not a well-formed envelope of a supported version."""
