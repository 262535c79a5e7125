"""The client core: one unlocked identity, its cache and its relay connection, made of
its parts (prekeys, contacts, sending, receiving, views). No feature is imported here:
features plug in through ClientBase's hooks (client/service.py assembles them).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Self

from ..common import content as c
from ..common import frames as f
from ..common.crypto.keys import (
    IdentityKey,
    OneTimePrekeySecret,
    SignedPrekeySecret,
    make_one_time_prekeys,
    make_signed_prekey,
)
from ..common.errors import TenchatError
from ..common.identity import (
    fingerprint,
    handle_message,
    normalize_handle,
    solve_pow,
)
from .base import (
    MAX_POW_BITS,
    OTK_BATCH,
    OTK_LOW,
    OTK_NEXT,
    OTK_PUBLISHED,
    SPK_PUBLISHED,
    ClientBase,
    Listener,
    ca_file_of,
    now_ms,
)
from .cache import Cache
from .connection import RelayConnection, RelayList, open_first
from .contacts import ContactBook
from .device_sync import DeviceSync
from .devices import DeviceBook
from .events import (
    OFFLINE,
    ONLINE,
    ConnectionChanged,
    Event,
)
from .keystore import Keystore, Secrets
from .known_relays import known_relays_path
from .prekeys import PrekeyUpkeep
from .receiving import Receiving
from .sealed_sender import PROFILE_STATE, SealedSender
from .sending import Sending
from .views import Views

__all__ = ["Core"]

log = logging.getLogger("tenchat.client")


FirstPrekeys = tuple[SignedPrekeySecret, list[OneTimePrekeySecret]]


async def publish_first_prekeys(conn: RelayConnection, device: IdentityKey) -> FirstPrekeys:
    """A new device's signed prekey and first batch of one-time prekeys, published."""
    spk = make_signed_prekey(device, 1)
    otks = make_one_time_prekeys(1, OTK_BATCH)
    await conn.request(
        f.PublishPrekeys, user=device.public,
        spk=f.SignedPrekey(key_id=spk.key_id, pub=spk.public, sig=spk.sig),
        otks=[f.OneTimePrekey(key_id=k.key_id, pub=k.public) for k in otks],
    )
    return spk, otks


async def store_first_prekeys(cache: Cache, prekeys: FirstPrekeys) -> None:
    spk, otks = prekeys
    now = now_ms()
    async with cache.transaction():
        await cache.prekeys.put("spk", spk.key_id, spk.public, spk.private, now)
        for k in otks:
            await cache.prekeys.put("otk", k.key_id, k.public, k.private, now)
        await cache.settings.set(SPK_PUBLISHED, spk.key_id)
        await cache.settings.set(OTK_NEXT, OTK_BATCH + 1)
        await cache.settings.set(OTK_PUBLISHED, OTK_BATCH)


class Core(PrekeyUpkeep, ContactBook, Sending, Receiving, Views, DeviceBook, DeviceSync,
           ClientBase):
    """One unlocked identity: keys, cache, relay connection."""

    def __init__(self, home: Path, relay_url: str, secrets: Secrets, cache: Cache, *,
                 clock: Callable[[], int] = now_ms) -> None:
        self.home = home
        self.clock = clock  # ms; stories expire by it (tests pass one that runs ahead)
        self.relay_url = relay_url  # one URL, or several of one relay: "ws://a,ws://b"
        self.relays = RelayList(relay_url)  # which of them to dial (failover)
        self.secrets = secrets
        self.identity = IdentityKey.from_seed(secrets.identity_seed)  # the account key
        self.user = self.identity.public  # the account: what contacts know (handle, safety)
        # This device's key: its relay identity, queue, prekeys and sessions. On a home
        # made before devices (and an account's first device) it is the account key.
        self.device = (IdentityKey.from_seed(secrets.device_seed) if secrets.device_seed
                       else self.identity)
        self.cache = cache
        self._conn: RelayConnection | None = None
        self._conn_lock = asyncio.Lock()
        self._refill: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []
        self._content_handlers = {}
        self._state_handlers = {}
        self._after_receive = []
        self._runners = []
        self._on_story_new = []
        self._flush_lock = asyncio.Lock()
        self._background: set[asyncio.Task[object]] = set()
        self.connection_state = OFFLINE
        self.unsent: dict[bytes, TenchatError] = {}  # outbox items the last flush couldn't send
        self.presence: dict[bytes, bool] = {}  # watched peers; absent = unknown
        self.devices_checked: dict[bytes, int] = {}  # client/devices.py, refresh_stale
        self.relay_unreachable_at: int | None = None  # client/devices.py, _reachable
        self.watched_devices: dict[bytes, bytes] = {}  # presence: device -> account
        self.devices_online: dict[bytes, bool] = {}  # presence per watched device
        self.sealed_sender = SealedSender(self)
        self.register_content((c.ProfileKey,), self.sealed_sender.receive)
        self.register_state((PROFILE_STATE,), self.sealed_sender.apply_state)
        self._rewatch_lock = asyncio.Lock()
        self._rewatch_due = False

    # The services a `tenchat send` never touches are imported on first use (start-up
    # time: docs/performance.md wants the whole command under 0.5 s).

    # --- lifecycle ----------------------------------------------------------------------

    @classmethod
    async def create(cls, home: Path, relay_url: str, handle: str, passphrase: str,
                     invite: str = "") -> Self:
        """Make an identity, register ``handle`` and publish prekeys; write nothing on failure."""
        handle = normalize_handle(handle)
        keystore = Keystore.in_home(home)
        if keystore.exists():
            raise TenchatError(f"an identity already exists in {home}")
        if not passphrase:
            raise TenchatError("the passphrase must not be empty")
        identity = IdentityKey.generate()
        secrets = Secrets(identity_seed=identity.seed, storage_key=os.urandom(32),
                          handle=handle, relay=relay_url)
        conn, _ = await open_first(RelayList(relay_url), lambda url: RelayConnection(
            url, user=identity.public, sign=identity.sign, ca_file=ca_file_of(home, url),
            known=known_relays_path(home), pin=False))
        try:
            nonce = b""
            if conn.register_pow > MAX_POW_BITS:  # hours of CPU, uncancellable (review L3)
                raise TenchatError(
                    f"the relay asks a {conn.register_pow}-bit proof-of-work to register, "
                    f"more than this client solves ({MAX_POW_BITS} bits); nothing was written")
            if conn.register_pow:  # the relay asks a proof-of-work (docs/protocol.md)
                nonce = await asyncio.to_thread(solve_pow, conn.challenge, identity.public,
                                                handle, conn.register_pow)
            await conn.request(f.Register, handle=handle, invite=invite, pow=nonce,
                               sig=identity.sign(handle_message(handle, identity.public)))
            prekeys = await publish_first_prekeys(conn, identity)
        finally:
            await conn.close()
        cache = await Cache.open(home, secrets.storage_key)
        await store_first_prekeys(cache, prekeys)
        keystore.save(secrets, passphrase)
        from .known_relays import KnownRelays

        known = KnownRelays(known_relays_path(home))
        if known.get(conn.origin) is None:  # pinned only once the identity exists
            known.pin(conn.origin, conn.relay_name)
        return cls(home, relay_url, secrets, cache)

    @classmethod
    async def unlock(cls, home: Path, relay_url: str | None, passphrase: str) -> Self:
        """The client of ``home`` unlocked with ``passphrase``: the key client/launch.py's
        helper derived (unlock_ahead), else Argon2id on a thread (the event loop, a
        TUI's, keeps running)."""
        from . import unlock_ahead

        return await cls.from_secrets(home, relay_url,
                                     await unlock_ahead.load(home, passphrase))

    @classmethod
    async def from_secrets(cls, home: Path, relay_url: str | None, secrets: Secrets, *,
                           clock: Callable[[], int] = now_ms) -> Self:
        """The client of an unlocked keystore (``Keystore.load``); its relay: ``relay_url``,
        else ``relay`` in HOME/config.toml, else the one the identity was created with."""
        if not relay_url:
            from .settings import SettingsError, load_settings

            try:
                relay_url = load_settings(home).relay or None
            except SettingsError as exc:
                raise TenchatError(str(exc)) from None
        cache = await Cache.open(home, secrets.storage_key)
        return cls(home, relay_url or secrets.relay, secrets, cache, clock=clock)

    async def close(self) -> None:
        self._closed = True  # a run()/sync(follow=True) loop ends instead of reconnecting
        for task in list(self._background):
            task.cancel()
        await self._drop_connection()
        await self.cache.close()  # and the home's lock

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- identity -----------------------------------------------------------------------

    @property
    def handle(self) -> str:
        return self.secrets.handle

    def whoami(self) -> dict[str, str]:
        return {"user_id": self.user.hex(), "handle": self.handle,
                "fingerprint": fingerprint(self.user), "relay": self.relay_url,
                "device": self.device_id.hex()}

    # --- live events --------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every event (in the loop); returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a UI bug must not break message handling
                log.exception("event listener failed")

    def _set_state(self, state: str, *, retry_in: float | None = None, error: str = "") -> None:
        self.connection_state = state
        if state != ONLINE:
            self.presence.clear()
        self.emit(ConnectionChanged(state, retry_in, error))

    def _spawn(self, coro: Awaitable[object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- connection ---------------------------------------------------------------------

    async def connection(self) -> RelayConnection:
        async with self._conn_lock:
            if self._conn is None or self._conn.closed.is_set():
                conn, authed = await open_first(self.relays, lambda url: RelayConnection(
                    url, user=self.device_id, sign=self.device.sign,
                    ca_file=ca_file_of(self.home, url), known=known_relays_path(self.home)))
                self._conn = conn
                await self._tell_relay_privacy(conn)
                # Also when we hold far more private keys than the relay does plus the
                # few handed-out ones we keep (a home from before keys were pruned).
                refill = authed.otk_count < OTK_LOW or await self.cache.prekeys.count(
                    "otk") > authed.otk_count + self.prekey_policy.keep_taken + OTK_BATCH
                if refill or await self._spk_due(now_ms()):
                    # In the background: the caller may hold the cache lock the upkeep needs.
                    self._refill = asyncio.create_task(
                        self.maintain_prekeys(conn, refill=refill))
            return self._conn

    async def _tell_relay_privacy(self, conn: RelayConnection) -> None:
        """The relay enforces three privacy controls for us: presence hiding, blocks, and
        who may send us sealed messages. hide_presence is sent either way: off must undo an
        earlier on."""
        await conn.request(f.Privacy, hide_presence=await self.setting("hide_presence"))
        await self.sealed_sender.register(conn, force=True)
        for contact in await self.cache.contacts.all():
            if contact.blocked:  # every device of theirs (client/devices.py)
                for device in await self.devices_of(contact.user, fresh=False):
                    await conn.request(f.Block, user=device, blocked=True)

    async def _drop_connection(self) -> None:
        """Close the relay connection, letting a prekey refill in flight finish first."""
        if self._refill is not None:
            try:
                async with asyncio.timeout(10):
                    await self._refill
            except (TenchatError, TimeoutError) as exc:
                log.warning("prekey refill did not finish: %s", exc)
            self._refill = None
        await self.sealed_sender.close()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
