"""A group's name, topic and picture, sealed with the group's metadata key so the relay,
which stores and checks the signed membership chain, can't read them (issue 17).

The key is 32 random bytes the group's creator makes; admins send it 1:1 to the members
they add (``group_key`` content, docs/protocol.md §11). A ``create`` or ``meta`` change
carries the sealed metadata in its ``sealed`` field instead of ``name``, ``topic`` and
``avatar`` (docs/protocol.md §6.1).

    sealed = nonce (24 random bytes) || XChaCha20-Poly1305(key, nonce,
             MessagePack {"name": str, "topic": str, "avatar": bin},
             ad = "tenchat/group-meta/v1" || group id)
"""

from __future__ import annotations

import os
from typing import Annotated, Final

import msgspec
from nacl import bindings
from nacl.exceptions import CryptoError as NaclCryptoError

from .errors import DecryptionFailed

__all__ = ["GroupMeta", "seal_meta", "open_meta", "META_KEY_LEN"]

META_KEY_LEN: Final = 32
_AD: Final = b"tenchat/group-meta/v1"
_NONCE: Final = 24


class GroupMeta(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    topic: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    avatar: Annotated[bytes, msgspec.Meta(max_length=1024)] = b""  # a MediaRef, MessagePack


def seal_meta(key: bytes, group: bytes, meta: GroupMeta) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        msgspec.msgpack.encode(meta), _AD + group, nonce, key)


def open_meta(key: bytes, group: bytes, sealed: bytes) -> GroupMeta:
    """DecryptionFailed if it does not open under ``key`` for ``group`` or is no metadata."""
    try:
        plain = bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed[_NONCE:], _AD + group, sealed[:_NONCE], key)
        return msgspec.msgpack.decode(plain, type=GroupMeta)
    except (NaclCryptoError, ValueError, TypeError, msgspec.MsgspecError):
        raise DecryptionFailed("group metadata does not open") from None
