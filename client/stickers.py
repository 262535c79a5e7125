"""Sticker packs: make one from images, install one from a link, send a sticker, and
open a received one.

Packs live in the relay's encrypted blob store (client.media) and are described by
a sealed manifest (common.stickers). A Sticker message carries the manifest's blob
id, the pack key and an index, end-to-end; the receiver fetches the manifest and the
image, checks each against its blob id, and keeps them sealed in its cache.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ..common import content as c
from ..common.crypto.media import MediaRef, sealed_size
from ..common.errors import TenchatError
from ..common.groups import GroupState
from ..common.stickers import (
    MAX_MANIFEST,
    MAX_STICKER_BYTES,
    STICKER_PX,
    StickerEntry,
    StickerManifest,
    decode_manifest,
    encode_manifest,
    make_link,
    parse_link,
)
from . import media
from .cache import MessageRow
from .conv import is_user
from .events import Event
from .message_rules import (
    AddRow,
    KeepSticker,
    MessageFacts,
    apply_sticker,
    clean_name,
    sticker_text,
)
from .rules import Incoming

if TYPE_CHECKING:
    from .base import Receipts
    from .service import Client

__all__ = ["StickerService", "StickerPack", "StickerError", "sticker_text"]

log = logging.getLogger("tenchat.client.stickers")

_MIME = {"PNG": "image/png", "WEBP": "image/webp"}


class StickerError(TenchatError):
    """A sticker pack can't be made, installed or used; the message says why."""


@dataclass(frozen=True, slots=True)
class StickerPack:
    id: bytes  # the manifest's blob id
    key: bytes  # the pack key
    name: str
    stickers: list[StickerEntry]

    @property
    def link(self) -> str:
        return make_link(self.id, self.key)


class StickerService:
    def __init__(self, client: Client) -> None:
        self.c = client
        self._installs: set[asyncio.Task[None]] = set()  # packs our other devices installed

    # --- packs --------------------------------------------------------------------------

    async def create_pack(self, name: str, images: list[Path]) -> StickerPack:
        """Resize each image to fit STICKER_PX (PNG or WebP only), seal and upload it, then
        the manifest under a fresh pack key; the pack is installed here."""
        from . import imaging

        name = clean_name(name)
        if not name:
            raise StickerError("a sticker pack needs a name")
        if not images:
            raise StickerError("a sticker pack needs at least one image")
        if len(images) > c.MAX_PACK_STICKERS:
            raise StickerError(f"a pack holds at most {c.MAX_PACK_STICKERS} stickers")
        prepared: list[tuple[str, bytes, str, int, int]] = []
        seen: set[str] = set()
        for path in images:
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise StickerError(f"cannot read {path}: {exc.strerror or exc}") from None
            try:
                fmt, _w, _h = imaging.image_info(raw)
                if fmt not in _MIME:
                    raise StickerError(f"{path.name} is {fmt or 'not an image'}; "
                                       "stickers are PNG or WebP")
                data = await asyncio.to_thread(imaging.thumbnail, raw, (STICKER_PX, STICKER_PX))
                _fmt, width, height = imaging.image_info(data)
            except imaging.ImageError as exc:
                raise StickerError(f"{path.name}: {exc}") from None
            if len(data) > MAX_STICKER_BYTES:
                raise StickerError(f"{path.name} is still too large after resizing")
            label = clean_name(path.stem) or f"sticker{len(prepared) + 1}"
            if label.lower() in seen:
                label = f"{label}{len(prepared) + 1}"
            seen.add(label.lower())
            prepared.append((label, data, _MIME[fmt], width, height))
        entries = []
        for label, data, mime, width, height in prepared:
            mk = await media.upload_sealed(self.c.connection, data)
            entries.append(StickerEntry(name=label, ref=MediaRef(
                hash=mk.blob_hash, key=mk.key, size=mk.size, mime=mime, width=width,
                height=height)))
        manifest = StickerManifest(name=name, stickers=entries)
        opened = encode_manifest(manifest)
        if len(opened) > MAX_MANIFEST // 2:
            raise StickerError("too many stickers for one pack")
        pack_key = os.urandom(32)  # opens the manifest only: one key, one blob
        mk = await media.upload_sealed(self.c.connection, opened, key=pack_key)
        from .base import now_ms

        async with self.c.cache.transaction():
            await self.c.cache.stickers.put_pack(mk.blob_hash, pack_key, name, opened, now_ms(),
                                                installed=True)
            for (_l, data, *_r), entry in zip(prepared, entries, strict=True):
                await self.c.cache.stickers.put_image(entry.ref.hash, data)
            await self._tell_devices(mk.blob_hash, pack_key)
        await self.c.send_devices_soon()
        return StickerPack(mk.blob_hash, pack_key, name, entries)

    async def install(self, link: str, *, tell: bool = True) -> StickerPack:
        """Fetch a pack's manifest and every image, verify each, keep them; all or nothing.
        Our other devices install it too (not ``tell``: it came from one of them)."""
        manifest_id, key = parse_link(link)
        manifest, opened = await self._fetch_manifest(manifest_id, key)
        images = [(e.ref.hash, await self._fetch_image(e.ref)) for e in manifest.stickers]
        from .base import now_ms

        async with self.c.cache.transaction():
            await self.c.cache.stickers.put_pack(manifest_id, key, manifest.name, opened,
                                                now_ms(), installed=True)
            for blob, data in images:
                await self.c.cache.stickers.put_image(blob, data)
            if tell:
                await self._tell_devices(manifest_id, key)
        if tell:
            await self.c.send_devices_soon()
        return StickerPack(manifest_id, key, manifest.name, manifest.stickers)

    async def _tell_devices(self, manifest_id: bytes, key: bytes) -> None:
        """Our other devices install the pack too (issue 16; in the open transaction)."""
        await self.c.tell_devices("sticker_pack", True, manifest_id, data=key)

    async def apply_state(self, state: c.State, events: list[Event]) -> None:
        """Another device of ours installed a pack: install it here too, in the
        background (it is fetched from the relay; we are in the receive transaction)."""
        if not state.value or len(state.target) != 32 or len(state.data) != 32:
            return
        link = make_link(state.target, state.data)

        async def install() -> None:
            try:
                await self.install(link, tell=False)
            except TenchatError as exc:
                log.warning("a pack installed on another device of ours, not here: %s", exc)

        task = asyncio.ensure_future(install())
        self.c._spawn(task)  # cancelled when the client closes
        self._installs.add(task)
        task.add_done_callback(self._installs.discard)

    async def installs_done(self) -> None:
        """Wait for the packs our other devices installed that are being fetched here
        (a failed one is logged, and can be installed from its link)."""
        await asyncio.gather(*self._installs, return_exceptions=True)

    async def packs(self) -> list[StickerPack]:
        """Installed packs, oldest first."""
        return [StickerPack(mid, key, name, decode_manifest(raw).stickers)
                for mid, key, name, raw in await self.c.cache.stickers.packs()]

    async def find_pack(self, which: str) -> StickerPack:
        """An installed pack by name (case-insensitive) or manifest id prefix (hex)."""
        packs = await self.packs()
        by_name = [p for p in packs if p.name.lower() == which.lower()]
        if not by_name and len(which) >= 6:
            by_name = [p for p in packs if p.id.hex().startswith(which.lower())]
        if not by_name:
            raise StickerError(f"no installed sticker pack {which!r} "
                               "(see `tenchat sticker pack list`)")
        if len(by_name) > 1:
            raise StickerError(f"several packs match {which!r}; use the pack id")
        return by_name[0]

    @staticmethod
    def pick(pack: StickerPack, which: str) -> int:
        """A sticker of a pack by number (1-based, as listed) or name; its 0-based index."""
        if which.isdigit():
            n = int(which)
            if not 1 <= n <= len(pack.stickers):
                raise StickerError(f"pack {pack.name!r} has stickers 1 to {len(pack.stickers)}")
            return n - 1
        for i, entry in enumerate(pack.stickers):
            if entry.name.lower() == which.lower():
                return i
        raise StickerError(f"no sticker {which!r} in pack {pack.name!r}")

    # --- messages -----------------------------------------------------------------------

    async def send(self, conv: bytes, pack: StickerPack, index: int) -> MessageRow:
        """Send sticker ``index`` (0-based) of an installed pack to a conversation."""
        from .base import now_ms
        from .errors import PeerError

        if is_user(conv):
            contact = await self.c.cache.contacts.get(conv)
            if contact is not None and contact.blocked:
                raise PeerError(f"@{contact.handle} is blocked; unblock them to send")
        entry = pack.stickers[index]
        msg_id = os.urandom(16)
        now = now_ms()
        timer = await self.c.cache.conversations.timer(conv)
        content = c.Sticker(id=msg_id, pack=pack.id, key=pack.key, index=index, sent_at=now,
                            name=entry.name, expires_in=timer)
        body = c.encode_content(content)

        async def also() -> None:
            await self.c.cache.stickers.put_msg(conv, msg_id, body)

        message = await self.c.queue_message(conv, msg_id, now, timer, body,
                                              sticker_text(entry.name), reply_to=None, also=also)
        return await self.c.send_queued(conv, message)

    async def refs(self, conv: bytes, ids: list[bytes]) -> dict[bytes, c.Sticker]:
        """The sticker messages among these (msg id -> its Sticker content)."""
        out = {}
        for msg_id, raw in (await self.c.cache.stickers.msgs(conv, ids)).items():
            content = c.decode_content(raw)
            if isinstance(content, c.Sticker):
                out[msg_id] = content
        return out

    async def cached(self, sticker: c.Sticker) -> tuple[StickerEntry, bytes] | None:
        """The entry and image of a sticker if both are in the cache (verified when they
        were fetched); None otherwise. Never touches the network."""
        pack = await self.c.cache.stickers.pack(sticker.pack)
        if pack is None or pack.key != sticker.key:
            return None
        stickers = decode_manifest(pack.opened).stickers
        if sticker.index >= len(stickers):
            return None
        data = await self.c.cache.stickers.image(stickers[sticker.index].ref.hash)
        return (stickers[sticker.index], data) if data is not None else None

    async def image(self, sticker: c.Sticker) -> tuple[StickerEntry, bytes]:
        """The entry and image bytes of a sticker: from the cache, else fetched from the
        relay and verified against the manifest (StickerError if it can't be)."""
        cached = await self.c.cache.stickers.pack(sticker.pack)
        if cached is not None and cached.key == sticker.key:
            manifest = decode_manifest(cached.opened)
        else:
            manifest, opened = await self._fetch_manifest(sticker.pack, sticker.key)
            from .base import now_ms

            async with self.c.cache.transaction():
                await self.c.cache.stickers.put_pack(sticker.pack, sticker.key, manifest.name,
                                                    opened, now_ms(), installed=False)
        if sticker.index >= len(manifest.stickers):
            raise StickerError("the sticker is not in its pack")
        entry = manifest.stickers[sticker.index]
        data = await self.c.cache.stickers.image(entry.ref.hash)
        if data is None:
            data = await self._fetch_image(entry.ref)
            async with self.c.cache.transaction():
                await self.c.cache.stickers.put_image(entry.ref.hash, data)
        return entry, data

    async def apply(self, conv: bytes, author: bytes, content: c.Sticker,
                    group: GroupState | None, new: list[MessageRow], receipts: Receipts,
                    events: list[Event]) -> None:
        """A peer's sticker message (the caller holds the cache lock and commits): the
        rules decide (client/message_rules.py), this writes."""
        from .base import now_ms

        cache = self.c.cache
        item = Incoming(conv, author, content, group)
        facts = MessageFacts(now_ms(), known=await cache.messages.get(conv, content.id)
                             is not None)
        effects = apply_sticker(facts, item)
        stored: dict[bytes, MessageRow] = {}
        for w in effects.writes:
            match w:
                case AddRow(row):
                    if (kept := await cache.messages.add_stored(row)) is None:
                        return  # raced by a copy in the same batch: nothing more
                    stored[row.id] = kept
                case KeepSticker(in_conv, msg_id, body):
                    await cache.stickers.put_msg(in_conv, msg_id, body)
        effects.deliver(stored, new, receipts, events)

    # --- fetching -----------------------------------------------------------------------

    async def _fetch_manifest(self, manifest_id: bytes, key: bytes
                              ) -> tuple[StickerManifest, bytes]:
        try:
            opened = await media.fetch_bytes(self.c.connection, manifest_id, key,
                                             max_size=MAX_MANIFEST)
        except media.AttachmentError as exc:
            raise StickerError(f"sticker pack: {exc}") from None
        try:
            return decode_manifest(opened), opened
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise StickerError(f"the sticker pack's manifest is invalid ({exc})") from None

    async def _fetch_image(self, ref: MediaRef) -> bytes:
        if ref.size > MAX_STICKER_BYTES:
            raise StickerError("a sticker in this pack is too large")
        try:
            data = await media.fetch_bytes(self.c.connection, ref.hash, ref.key,
                                           max_size=sealed_size(ref.size))
        except media.AttachmentError as exc:
            raise StickerError(f"sticker: {exc}") from None
        if len(data) != ref.size:
            raise StickerError("a sticker has the wrong size")
        return data
