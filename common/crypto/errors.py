"""The exceptions of the end-to-end crypto.

    TenchatError                    (tenchat.common.errors)
    └── CryptoError                 any failure of the crypto layer
        ├── InvalidSignature        a signed prekey's signature does not verify
        ├── DecryptionFailed        a message can't be decrypted; the one opaque error of
        │                           :class:`~tenchat.common.crypto.session.Session`
        ├── TooManySkippedMessages  a header asks to skip more message keys than allowed
        ├── InvalidEnvelope         bytes that are not a tenchat envelope
        └── MediaError              an encrypted attachment can't be opened (common.crypto.media)
            ├── BlobHashMismatch    the blob's bytes do not hash to the id it was fetched by
            ├── TruncatedBlob       the stream ends before its final chunk, or goes on after it
            └── InvalidChunk        a chunk does not authenticate (wrong key, tampered bytes);
                                    also a DecryptionFailed

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
    "MediaError",
    "BlobHashMismatch",
    "TruncatedBlob",
    "InvalidChunk",
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


class MediaError(CryptoError):
    """An encrypted attachment (a media blob) can't be opened."""


class BlobHashMismatch(MediaError):
    """The blob's ciphertext does not hash to the blob id it was referred to by."""


class TruncatedBlob(MediaError):
    """The secretstream ends without its final chunk, or has bytes after it."""


class InvalidChunk(MediaError, DecryptionFailed):
    """A secretstream chunk does not authenticate: a wrong key or tampered bytes."""
