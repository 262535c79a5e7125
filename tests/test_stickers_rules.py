"""common.stickers: the share link and the manifest a client accepts (pure)."""

from __future__ import annotations

import os

import msgspec
import pytest

from tenchat.common.content import MAX_PACK_STICKERS
from tenchat.common.crypto.media import MediaRef
from tenchat.common.stickers import (
    StickerEntry,
    StickerLinkError,
    StickerManifest,
    decode_manifest,
    encode_manifest,
    make_link,
    parse_link,
)


def _ref(mime: str = "image/png") -> MediaRef:
    return MediaRef(hash=os.urandom(32), key=os.urandom(32), size=100, mime=mime)


def test_a_link_round_trips_and_keeps_the_key_in_the_fragment() -> None:
    blob, key = os.urandom(32), os.urandom(32)
    link = make_link(blob, key)
    assert link.startswith(f"tenchat://sticker/{blob.hex()}#") and "=" not in link
    assert parse_link(link) == (blob, key)
    assert parse_link(f"  {link}=\n") == (blob, key)  # pasted with padding and blanks


@pytest.mark.parametrize("link", [
    "", "https://example.org/sticker", "tenchat://sticker/" + "ab" * 32,  # no key
    "tenchat://sticker/" + "AB" * 32 + "#" + "A" * 43,  # upper-case hex id
    "tenchat://sticker/" + "ab" * 31 + "#" + "A" * 43,  # short id
    "tenchat://sticker/" + "ab" * 32 + "#" + "A" * 42,  # short key
])
def test_anything_else_is_not_a_sticker_link(link: str) -> None:
    with pytest.raises(StickerLinkError):
        parse_link(link)


def test_a_manifest_round_trips_and_holds_only_png_or_webp_stickers() -> None:
    manifest = StickerManifest(name="cats", stickers=[
        StickerEntry(name="hi", ref=_ref()), StickerEntry(name="bye", ref=_ref("image/webp"))])
    assert decode_manifest(encode_manifest(manifest)) == manifest
    svg = StickerManifest(name="cats", stickers=[StickerEntry(name="x", ref=_ref()),
                                                  StickerEntry(name="y", ref=_ref(
                                                      "image/svg+xml"))])
    with pytest.raises(msgspec.ValidationError, match="svg"):
        decode_manifest(encode_manifest(svg))


@pytest.mark.parametrize("stickers", [0, MAX_PACK_STICKERS + 1])
def test_a_manifest_has_one_to_max_stickers(stickers: int) -> None:
    manifest = StickerManifest(name="n", stickers=[
        StickerEntry(name="s", ref=_ref()) for _ in range(stickers)])
    with pytest.raises(msgspec.ValidationError):
        decode_manifest(encode_manifest(manifest))
