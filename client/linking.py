"""Linking a new device to an account (issue 16; docs/crypto.md "Linking a device").

New device: :func:`start_link` makes the device key and a one-time code, leaves its
sealed request at the rendezvous and returns a :class:`PendingLink` whose ``code`` the
user carries to an existing device; :meth:`PendingLink.finish` waits for the grant,
adds this device to the account's signed list, publishes its prekeys and writes the home.
Existing device: :func:`read_request` shows who asks; :func:`grant` hands the account
secrets over, sealed to the code, and waits for the new list.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ..common import devices as dv
from ..common import frames as f
from ..common.crypto.keys import IdentityKey
from ..common.crypto.media import MediaRef
from ..common.errors import ErrorCode, TenchatError
from . import media
from .base import ca_file_of, now_ms
from .cache import Cache, MessageRow
from .connection import RelayConnection, RelayError, RelayList, open_first
from .core import Core, publish_first_prekeys, store_first_prekeys
from .keystore import Keystore, Secrets
from .known_relays import KnownRelays, known_relays_path
from .sealed_sender import store_access, store_profile_key

__all__ = ["PendingLink", "start_link", "read_request", "grant", "pack_history", "POLL",
           "LINK_TIMEOUT"]

log = logging.getLogger("tenchat.client")

POLL = 0.2  # s between two looks at a rendezvous slot
JOIN_ATTEMPTS = 3  # publishing the list with us in it, against others publishing at once
LINK_TIMEOUT = 600.0  # s: the relay keeps a slot this long (LINK_TTL_MS, relay/storage/limits.py)


async def _take(conn: RelayConnection, slot: bytes, timeout: float) -> bytes | None:
    """The blob of ``slot`` once it is there; None after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        try:
            blob = await conn.request(f.LinkTake, slot=slot)
        except RelayError as exc:
            if exc.code != ErrorCode.NOT_FOUND:
                raise
            if loop.time() >= end:
                return None
            await asyncio.sleep(POLL)
            continue
        assert isinstance(blob, f.LinkBlob)
        return blob.blob


@dataclass
class PendingLink:
    home: Path
    relay_url: str
    name: str
    device: IdentityKey
    code: dv.LinkCode
    private: bytes  # the code's ephemeral X25519 private key
    conn: RelayConnection

    @property
    def text(self) -> str:
        return self.code.encode()

    async def finish(self, passphrase: str, *, timeout: float = LINK_TIMEOUT) -> Core:
        """Wait for the grant, join the account, write the home; TenchatError if no
        device approved within ``timeout`` (nothing is written then)."""
        try:
            blob = await _take(self.conn, dv.link_slots(self.code.secret)[1], timeout)
            if blob is None:
                raise TenchatError("no device approved this link in time; start again")
            got = dv.open_grant(self.code, self.private, blob)
            account = IdentityKey.from_seed(got.account_seed)
            held = dv.open_list(got.devices, account=account.public) if got.devices else None
            # Prekeys first: a device in the list must have a bundle to start sessions with.
            prekeys = await publish_first_prekeys(self.conn, self.device)
            record = await self._join(account, held)
            history = await self._history(got.history)
        finally:
            await self.conn.close()
        secrets = Secrets(identity_seed=got.account_seed, storage_key=os.urandom(32),
                          handle=got.handle, relay=self.relay_url, device_seed=self.device.seed)
        cache = await Cache.open(self.home, secrets.storage_key)
        await store_first_prekeys(cache, prekeys)
        dl = dv.open_list(record, account=account.public)
        now = now_ms()
        async with cache.transaction():
            await cache.devices.put(account.public, dl.version, record, dl.device_keys(),
                                         now)
            for user, handle, verified in got.contacts:
                if len(user) == 32 and user != account.public:
                    await cache.contacts.remember(user, handle, now)
                    if verified:
                        await cache.contacts.set_flag(user, "verified", True)
            if len(got.profile_key) == 32:
                await store_profile_key(cache, secrets.storage_key, got.profile_key,
                                        got.profile_generation)
            for peer, key in got.access:
                if len(peer) == 32 and len(key) == 16 and peer != account.public:
                    await store_access(cache, secrets.storage_key, peer, key)
            for item in history:  # shown: `inbox` prints only what arrives from now on
                await cache.messages.add(MessageRow(
                    item.id, item.conv, item.outgoing, item.text, item.sent_at,
                    item.received_at, item.status, sender=item.sender, reply_to=item.reply_to,
                    expires_at=item.expires_at), shown=True)
        Keystore.in_home(self.home).save(secrets, passphrase)
        known = KnownRelays(known_relays_path(self.home))
        if known.get(self.conn.origin) is None:
            known.pin(self.conn.origin, self.conn.relay_name)
        from .service import Client  # the whole client, as `Client.create` makes

        return Client(self.home, self.relay_url, secrets, cache)

    async def _history(self, ref: MediaRef | None) -> list[dv.HistoryItem]:
        """The messages the approving device sealed for us (none if it sent none, or if
        the blob doesn't open: linking goes on without them)."""
        if ref is None:
            return []

        async def connect() -> RelayConnection:
            return self.conn

        try:
            raw = await media.download_bytes(connect, ref)
            return msgspec.msgpack.decode(raw, type=dv.History).items
        except (TenchatError, msgspec.MsgspecError) as exc:
            log.warning("the history from the approving device was not read: %s", exc)
            return []

    async def _join(self, account: IdentityKey, held: dv.DeviceList | None) -> bytes:
        """Publish the account's next list with this device in it (the newest of the
        granted list and the relay's, both checked); again, from the relay's newest, if
        another device published one meanwhile (the relay keeps only a higher version)."""
        for attempt in range(JOIN_ATTEMPTS):
            try:
                return await self._join_once(account, held)
            except RelayError as exc:
                if exc.code != ErrorCode.FORBIDDEN or attempt == JOIN_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _join_once(self, account: IdentityKey, held: dv.DeviceList | None) -> bytes:
        try:
            info = await self.conn.request(f.DevicesGet, user=account.public)
            assert isinstance(info, f.DevicesInfo)
            fetched = dv.open_list(info.record, account=account.public)
            if held is None or fetched.version > held.version:
                held = fetched
        except RelayError as exc:
            if exc.code != ErrorCode.NOT_FOUND:
                raise
        entries = list(held.devices) if held is not None else [dv.DeviceEntry(
            key=account.public, name="first", added=0,
            sig=dv.sign_binding(account, account.public))]
        name, n = self.name, 2
        while any(e.name == name for e in entries):
            name, n = f"{self.name[:dv.MAX_DEVICE_NAME - 4]}-{n}", n + 1
        self.name = name
        entries.append(dv.DeviceEntry(key=self.device.public, name=name, added=now_ms(),
                                      sig=dv.sign_binding(self.device, account.public)))
        record = dv.make_list(account, (held.version if held is not None else 0) + 1, entries)
        await self.conn.request(f.DevicesPut, record=record)
        return record


async def start_link(home: Path, relay_url: str, name: str) -> PendingLink:
    """A new device's key and code, its request left at the rendezvous."""
    if Keystore.in_home(home).exists():
        raise TenchatError(f"an identity already exists in {home}")
    name = name.strip()
    if not name or len(name.encode()) > dv.MAX_DEVICE_NAME:
        raise TenchatError(f"a device name is 1 to {dv.MAX_DEVICE_NAME} bytes")
    device = IdentityKey.generate()
    code, private = dv.LinkCode.make()
    conn, _ = await open_first(RelayList(relay_url), lambda url: RelayConnection(
        url, user=device.public, sign=device.sign, ca_file=ca_file_of(home, url),
        known=known_relays_path(home), pin=False))
    try:
        await conn.request(f.LinkPut, slot=dv.link_slots(code.secret)[0],
                           blob=dv.seal_request(code, device, name))
    except BaseException:
        await conn.close()
        raise
    return PendingLink(home, relay_url, name, device, code, private, conn)


async def read_request(client: Core, text: str) -> tuple[dv.LinkCode, dv.LinkRequest]:
    """The new device's request behind a code (taken: a code is used once)."""
    code = dv.LinkCode.decode(text)
    conn = await client.connection()
    blob = await _take(conn, dv.link_slots(code.secret)[0], 0)
    if blob is None:
        raise TenchatError("no device is waiting with this code (expired, or already used)")
    return code, dv.open_request(code, blob)


async def pack_history(client: Core, per_conversation: int) -> MediaRef | None:
    """The latest ``per_conversation`` messages of every conversation, sealed under a
    fresh key and uploaded as one blob (the key goes inside the grant); None for none,
    or if the relay stores no blobs (or not one this large)."""
    if per_conversation <= 0:
        return None
    items: list[dv.HistoryItem] = []
    for conv in await client.cache.conversations.all():
        for m in await client.cache.messages.history(conv.peer, per_conversation):
            if not m.deleted:
                items.append(dv.HistoryItem(m.id, m.peer, m.outgoing, m.text, m.sent_at,
                                            m.received_at, m.status, m.sender, m.reply_to,
                                            m.expires_at))
    if not items:
        return None
    raw = msgspec.msgpack.encode(dv.History(v=1, items=items))
    try:
        return await media.upload_bytes(client.connection, raw, name="history")
    except TenchatError as exc:
        log.warning("the new device gets no history: %s", exc)
        return None


async def grant(client: Core, code: dv.LinkCode, request: dv.LinkRequest, *,
                timeout: float = 60.0, history: int = dv.HISTORY_DEFAULT) -> dv.DeviceList:
    """Hand the account secrets (and the latest ``history`` messages of each
    conversation) to the requesting device, sealed to its code, then wait until it has
    published the account's list with itself in it."""
    async with client.cache.transaction():
        held = await client.refresh_devices(client.user)
        record = (await client.cache.devices.held(client.user) or (b"", 0))[0]
        contacts = [(k.user, k.handle, k.verified) for k in await client.cache.contacts.all()
                    if k.handle is not None]
        # The account's one profile key: the new device registers its verifier for its
        # own queue, so contacts' sealed messages reach it too (client/sealed_sender.py).
        profile_key, profile_generation, access = await client.sealed_sender.handover()
    conn = await client.connection()
    got = dv.LinkGrant(account_seed=client.secrets.identity_seed, handle=client.handle,
                       devices=record if held is not None else b"", contacts=contacts,
                       history=await pack_history(client, history),
                       profile_key=profile_key, profile_generation=profile_generation,
                       access=access)
    await conn.request(f.LinkPut, slot=dv.link_slots(code.secret)[1],
                       blob=dv.seal_grant(code, got))
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        async with client.cache.transaction():
            new = await client.refresh_devices(client.user)
        if new is not None and request.device in new.device_keys():
            return new
        if loop.time() >= end:
            raise TenchatError("the new device did not join the account in time")
        await asyncio.sleep(POLL)
