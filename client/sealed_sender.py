"""Sealed sender, the client's side (docs/protocol.md §5.10, docs/crypto.md "Sealed
sender"): a 1:1 outbox item whose recipient's access key we hold is sealed (an outer
envelope layer around the Double Ratchet envelope, common/crypto/sealed.py) and sent on
a connection that never signs in, so the relay learns the recipient and not the sender.

The access keys come from profile keys, which contacts share inside encrypted messages
(``profile_key`` content): ours goes to a peer with the first message the user writes
to them, and to every contact we shared it with again after it is rotated — which
blocking someone does, so the blocked one's copy stops opening our queue. A sealed
message from a blocked identity is dropped after unsealing, like any other of theirs.

Kept apart from the rest of the send path on purpose: the inner envelope is the one
``session_crypto`` makes, unchanged, so other envelope work (multi-device fan-out)
stays independent of this layer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Final, NamedTuple

from nacl import secret

from ..common import content as c
from ..common import frames as f
from ..common.crypto.errors import CryptoError
from ..common.crypto.sealed import (
    SEALED_SENDER,
    access_key,
    access_verifier,
    seal,
    sealed_queue_id,
    unseal,
)
from ..common.errors import ErrorCode
from ..common.identity import fingerprint
from .base import ca_file_of
from .connection import RelayConnection, RelayError
from .known_relays import known_relays_path

if TYPE_CHECKING:
    from .core import Core
    from .outbox import Item

__all__ = ["SealedSender", "SealedItem", "is_sealed"]

log = logging.getLogger("tenchat.client")

PROFILE_KEY: Final = "sealed.profile_key"  # our profile key, sealed with the storage key
GENERATION: Final = "sealed.generation"  # how many times it was rotated
SHARED: Final = "sealed.shared."  # + peer hex: the generation that peer was sent
ACCESS: Final = "sealed.access."  # + peer hex: that peer's access key, sealed
GRANTED: Final = "sealed.granted."  # + peer hex: a message we wrote went to them named
# An anonymous connection is reused for this long, then a new one is opened: under the
# relay's auth_timeout (default 30 s), after which it closes connections that never
# signed in; and a fresh connection now and then links fewer sends together.
ANON_REUSE_S: Final = 20.0


class SealedItem(NamedTuple):
    body: bytes  # the sealed envelope
    access: bytes  # the recipient's access key


def is_sealed(item: f.Deliver) -> bool:
    """A delivery the relay queued with no sender (a sealed_send)."""
    return item.sender == SEALED_SENDER


class SealedSender:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._box = secret.SecretBox(core.secrets.storage_key)
        self._access: dict[bytes, bytes | None] = {}  # peer -> access key, read once
        self._anon: RelayConnection | None = None
        self._anon_opened = 0.0
        self._anon_lock = asyncio.Lock()
        self._registered: int | None = None  # what this process last told the relay
        self._enabled = False  # the sealed_sender setting, read once per flush (prepare)
        self._presence = True  # not hide_presence: read once per flush (prepare)
        self._granted: dict[bytes, bool] = {}  # peer -> the relay knows we wrote to them
        self._granting: set[bytes] = set()  # this flush's named written items (msg ids)

    # --- our profile key ---------------------------------------------------------------

    async def _profile_key(self) -> bytes | None:
        raw = await self.core.cache.settings.get(PROFILE_KEY)
        return self._box.decrypt(raw) if isinstance(raw, bytes) else None

    async def _generation(self) -> int:
        raw = await self.core.cache.settings.get(GENERATION)
        return int(raw) if raw is not None else 0

    async def _make_profile_key(self) -> bytes:
        """Ours, made on first use (in the open transaction)."""
        key = await self._profile_key()
        if key is None:
            key = os.urandom(32)
            await self.core.cache.settings.set(PROFILE_KEY, bytes(self._box.encrypt(key)))
            await self.core.cache.settings.set(GENERATION, await self._generation() + 1)
        return key

    async def register(self, conn: RelayConnection, *, force: bool = False) -> None:
        """Tell the relay who may send us sealed messages — holders of our current access
        key, or anyone (the ``sealed_from_anyone`` setting) — unless this process told it
        so already. Writes nothing to the cache (the caller may hold its lock)."""
        key = await self._profile_key()
        anyone = await self.core.setting("sealed_from_anyone")
        state = await self._generation() * 2 + int(anyone)
        if self._registered == state and not force or state == 0:
            return  # told already, or nothing to tell (no key, and the relay's default)
        verifier = access_verifier(access_key(key)) if key is not None else b""
        await conn.request(f.SealedAccess, verifier=verifier, anyone=anyone)
        self._registered = state

    async def prepare(self, conn: RelayConnection) -> None:
        """Before a flush: the relay knows our current access key, and the setting is read
        once for all the flush's items."""
        await self.register(conn)
        self._enabled = await self.core.setting("sealed_sender")
        self._presence = not await self.core.setting("hide_presence")
        self._granting.clear()

    async def _was_granted(self, peer: bytes) -> bool:
        if peer not in self._granted:
            granted = await self.core.cache.settings.get(GRANTED + peer.hex())
            self._granted[peer] = granted is not None
        return self._granted[peer]

    async def after_flush(self, stored: list[Item]) -> None:
        """In the flush's closing transaction: remember the peers a named written message
        reached (they may now see our presence; later ones go sealed)."""
        for item in stored:
            if item.msg_id in self._granting:
                await self.core.cache.settings.set(GRANTED + item.peer.hex(), 1)
                self._granted[item.peer] = True
        self._granting.clear()

    async def share_with(self, peer: bytes) -> None:
        """Queue our profile key to ``peer`` (in the open transaction) unless they have the
        current one: called when the user writes to them."""
        if peer == self.core.user or self.core.device.public != self.core.user:
            return  # not to ourselves; and a linked device has no profile key of its own
        key = await self._make_profile_key()
        generation = await self._generation()
        if await self.core.cache.settings.get(SHARED + peer.hex()) == generation:
            return
        await self.core.cache.settings.set(SHARED + peer.hex(), generation)
        await self.core.queue_content(peer, os.urandom(16),
                                      c.encode_content(c.ProfileKey(key=key)), typed=False)

    async def rotate(self) -> None:
        """A new profile key (in the open transaction), sent to every contact that had the
        old one except blocked ones: after a block, the blocked identity's access key no
        longer opens our queue once the relay has the new verifier (the next flush)."""
        await self.core.cache.settings.set(PROFILE_KEY, bytes(self._box.encrypt(os.urandom(32))))
        await self.core.cache.settings.set(GENERATION, await self._generation() + 1)
        for contact in await self.core.cache.contacts.all():
            if contact.blocked or await self.core.cache.settings.get(
                    SHARED + contact.user.hex()) is None:
                continue
            try:
                await self.share_with(contact.user)
            except Exception as exc:  # e.g. a pending key change: they get it later
                log.info("profile key not sent to %s: %s", fingerprint(contact.user), exc)

    # --- peers' access keys --------------------------------------------------------------

    async def receive(self, conv: bytes, author: bytes, content: c.Content,
                      group: object, *_: object) -> None:
        """A contact's profile key (1:1 only: the pairwise session authenticated them)."""
        assert isinstance(content, c.ProfileKey)
        if group is not None:
            return
        access = access_key(content.key)
        await self.core.cache.settings.set(ACCESS + author.hex(), bytes(self._box.encrypt(access)))
        self._access[author] = access

    async def access_for(self, peer: bytes) -> bytes | None:
        if peer not in self._access:
            raw = await self.core.cache.settings.get(ACCESS + peer.hex())
            self._access[peer] = self._box.decrypt(raw) if isinstance(raw, bytes) else None
        return self._access[peer]

    async def forget(self, peer: bytes, refused: bytes) -> bytes | None:
        """``peer``'s access key ``refused`` no longer works (they rotated it, perhaps
        blocking us). Another process on this home may have stored their new one
        meanwhile: that one is returned (and kept), else the key is dropped."""
        async with self.core.cache.transaction():
            raw = await self.core.cache.settings.get(ACCESS + peer.hex())
            stored = self._box.decrypt(raw) if isinstance(raw, bytes) and raw else None
            if stored is not None and stored != refused:
                self._access[peer] = stored
                return stored
            await self.core.cache.settings.set(ACCESS + peer.hex(), b"")
        self._access[peer] = None
        return None

    # --- sending and receiving -----------------------------------------------------------

    async def seal_item(self, item: Item, written: bool) -> SealedItem | None:
        """The sealed form of a 1:1 outbox item, or None to send it as it is: no access
        key for the peer, the ``sealed_sender`` setting off at :meth:`prepare`, or the
        first message the user writes to the peer (it grants presence). ``written``: the
        user wrote it (the item, or the message it is a device's copy of)."""
        sealed = await self._seal(item, written)
        if sealed is None and written:
            self._granting.add(item.msg_id)  # named, with conv: the relay learns the contact
        return sealed

    async def _seal(self, item: Item, written: bool) -> SealedItem | None:
        account = await self.core.account_of(item.peer)
        if not self._enabled or account in (None, self.core.user):
            return None  # off, or to one of our own devices
        if account != item.peer:
            # A linked device's queue has its own verifier, of its own profile key: only an
            # account's first device (whose device key is the account key) gets sealed
            # messages until the profile key is shared between an account's devices.
            return None
        access = await self.access_for(item.peer)
        if not access:
            return None
        if written and self._presence and not await self._was_granted(item.peer):
            # Presence is shown to those one wrote to (docs/protocol.md §5.6), which the
            # relay learns from a named `conv` message: the first one the user writes to
            # a peer goes named, the rest sealed. With hide_presence on, none is named.
            return None
        return SealedItem(seal(self.core.device, item.peer, item.msg_id, item.envelope), access)

    async def send(self, item: Item, sealed: SealedItem, written: bool) -> bool:
        """Send a sealed item on the anonymous connection; False if the peer's access key
        was refused (it is forgotten: the caller sends the item as it is)."""
        conn = await self.connection()
        access: bytes | None = sealed.access
        while access is not None:
            try:
                await conn.request(f.SealedSend, to=item.peer, msg=item.msg_id,
                                   body=sealed.body, access=access,
                                   expires_at=item.expires_at)
                return True
            except RelayError as exc:
                if exc.code != ErrorCode.ACCESS_DENIED:
                    raise
            access = await self.forget(item.peer, access)  # a newer one: try it once more
        if written:
            self._granting.add(item.msg_id)  # it goes named now
        return False

    async def connection(self) -> RelayConnection:
        """The anonymous connection (opened, or opened again, on demand)."""
        async with self._anon_lock:
            anon = self._anon
            if (anon is None or anon.closed.is_set()
                    or time.monotonic() - self._anon_opened > ANON_REUSE_S):
                if anon is not None:
                    await anon.close()
                home, url = self.core.home, self.core.relays.current
                anon = RelayConnection(url, user=self.core.device.public, sign=None,
                                       ca_file=ca_file_of(home, url),
                                       known=known_relays_path(home))
                await anon.open_anonymous()
                self._anon, self._anon_opened = anon, time.monotonic()
            return anon

    async def close(self) -> None:
        if self._anon is not None:
            await self._anon.close()
            self._anon = None

    def open(self, item: f.Deliver) -> tuple[bytes, bytes] | None:
        """(sender, inner envelope) of a sealed delivery, or None (logged) if it does not
        open or was not queued under the id its inner message names. The inner envelope
        must then decrypt on the session with that sender: the caller's check."""
        try:
            opened = unseal(self.core.device, item.body)
        except CryptoError as exc:
            log.warning("dropped a sealed message that does not open: %s", type(exc).__name__)
            return None
        if sealed_queue_id(self.core.device.public, opened.msg) != item.msg:
            log.warning("dropped a sealed message from %s queued under another id",
                        fingerprint(opened.sender))
            return None
        return opened.sender, opened.envelope
