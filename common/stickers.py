"""Sticker packs: the manifest that lists a pack's stickers, and the share link.

A pack is a set of images, each sealed as an ordinary media blob under its own
random key (common.crypto.media). The manifest — the pack's name and, per sticker,
its name and MediaRef (blob id and key) — is MessagePack sealed as one more blob
under the *pack key*. The link ``tenchat://sticker/<manifest blob id, hex>#<pack
key, base64url>`` is all it takes to install the pack; the key sits in the fragment,
which a client never sends anywhere. See docs/crypto.md ("Stickers").
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Final

import msgspec

from .content import MAX_PACK_STICKERS
from .crypto.media import MediaRef
from .errors import TenchatError

__all__ = ["StickerEntry", "StickerManifest", "StickerLinkError", "make_link", "parse_link",
           "encode_manifest", "decode_manifest", "MAX_MANIFEST", "MAX_STICKER_BYTES",
           "STICKER_PX"]

STICKER_PX: Final = 512  # stickers are resized to fit in STICKER_PX × STICKER_PX
MAX_MANIFEST: Final = 256 * 1024  # bytes of a sealed manifest a client will fetch
MAX_STICKER_BYTES: Final = 2 * 1024 * 1024  # bytes of one sticker image a client will fetch

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_LINK = re.compile(r"^tenchat://sticker/([0-9a-f]{64})#([A-Za-z0-9_-]{43})=?$")


class StickerLinkError(TenchatError):
    """Not a tenchat://sticker link."""


class StickerEntry(msgspec.Struct, forbid_unknown_fields=False):
    name: Name
    ref: MediaRef  # the image blob (PNG or WebP, at most STICKER_PX on a side) and its key


class StickerManifest(msgspec.Struct, forbid_unknown_fields=False):
    name: Name
    stickers: Annotated[list[StickerEntry],
                        msgspec.Meta(min_length=1, max_length=MAX_PACK_STICKERS)]
    v: int = 1


def encode_manifest(manifest: StickerManifest) -> bytes:
    return msgspec.msgpack.encode(manifest)


def decode_manifest(data: bytes) -> StickerManifest:
    """Raises msgspec.ValidationError / DecodeError for anything else."""
    manifest = msgspec.msgpack.decode(data, type=StickerManifest)
    for entry in manifest.stickers:
        if entry.ref.mime not in ("image/png", "image/webp"):
            raise msgspec.ValidationError(f"a sticker is {entry.ref.mime}, not PNG or WebP")
    return manifest


def make_link(manifest: bytes, key: bytes) -> str:
    return (f"tenchat://sticker/{manifest.hex()}#"
            f"{base64.urlsafe_b64encode(key).decode().rstrip('=')}")


def parse_link(link: str) -> tuple[bytes, bytes]:
    """(manifest blob id, pack key) of a sticker link."""
    m = _LINK.match(link.strip())
    if m is None:
        raise StickerLinkError("not a sticker link (tenchat://sticker/<id>#<key>)")
    try:
        key = base64.urlsafe_b64decode(m.group(2) + "=")
    except (binascii.Error, ValueError):
        raise StickerLinkError("the sticker link's key is damaged") from None
    return bytes.fromhex(m.group(1)), key
