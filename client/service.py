"""The client core: everything a tenchat user can do, for the CLI and the TUI alike.

A :class:`Client` owns one unlocked identity, its local cache and (lazily) one
relay connection. Outgoing messages are encrypted, written to the outbox and
committed before anything is sent; incoming ones are decrypted and committed
before the relay is told to delete them (docs/design.md, "Decisions": nothing acknowledged is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ..common import content as c
from ..common import frames as f
from ..common.clock import clock_offset
from ..common.crypto.errors import CryptoError
from ..common.crypto.keys import (
    IdentityKey,
    X25519KeyPair,
    make_one_time_prekeys,
    make_signed_prekey,
)
from ..common.crypto.media import MediaRef
from ..common.crypto.prekeys import (
    DAY_MS,
    PrekeyPolicy,
    otks_to_delete,
    spk_rotation_due,
    spks_to_delete,
)
from ..common.crypto.safety import safety_number
from ..common.crypto.session import (
    MAX_PREVIOUS_SESSIONS,
    Session,
    SessionRecord,
    envelope_kind,
)
from ..common.errors import ProtocolError, TenchatError
from ..common.groups import GroupState, can_pin
from ..common.identity import (
    fingerprint,
    handle_message,
    normalize_handle,
    signed_prekey_message,
    solve_pow,
    verify_signature,
)
from ..common.padding import pad
from . import media
from .cache import DELIVERED, PENDING, READ, SENT, Cache, ContactRow, MessageRow, Txn
from .connection import (
    ConnectionLost,
    RelayConnection,
    RelayError,
    RelayList,
    RelayUnreachable,
    open_first,
)
from .events import (
    CONNECTING,
    OFFLINE,
    ONLINE,
    ConnectionChanged,
    ConversationChanged,
    Event,
    MessageAdded,
    MessageChanged,
    PresenceChanged,
    StatusChanged,
    TypingChanged,
)
from .events import StoryViewed as StoryViewedEvent
from .groups import GroupError, GroupService
from .homelock import HomeLock
from .keystore import Keystore, Secrets
from .known_relays import known_relays_path
from .media import AttachmentError
from .polls import PollService

if TYPE_CHECKING:
    from .social import SocialService
    from .stickers import StickerService
    from .stories import StoryService
    from .wallet.service import WalletService

__all__ = ["Client", "Conversation", "SearchHit", "PeerError", "QueuedOffline", "now_ms"]

log = logging.getLogger("tenchat.client")

OTK_BATCH = 100  # one-time prekeys published at a time
OTK_LOW = 20  # refill when the relay holds fewer than this
SPK_PUBLISHED = "spk_published"  # meta: key id of the signed prekey the relay last accepted
OTK_NEXT = "otk_next"  # meta: the next one-time prekey id (never reused)
OTK_PUBLISHED = "otk_published"  # meta: the highest one-time prekey id the relay confirmed
SEND_WINDOW = 64  # outbox envelopes in flight at once

# Reconnecting (sync(follow=True), so run(), the TUI and `inbox --follow`): the wait before
# each attempt is the backoff times a random factor in [RECONNECT_JITTER, 1], the backoff
# starting at RECONNECT_FIRST and doubling up to RECONNECT_CAP, however long the relay is
# down. docs/performance.md: reconnect < 1 s after the relay is back, so no wait may be longer than
# 0.8 s (+ one handshake on loopback/LAN: milliseconds). That is still no hammering: a
# down relay sees at most one attempt per 0.4 s per client (after the first three), each
# a refused TCP connect or one handshake; and the jitter spreads the clients of a relay
# that comes back over 0.4 s instead of all at once (bench.reconnect_storm: the relay
# takes thousands of reconnects per second). The old 5 s cap with 0.5-1.5x jitter could
# wait 7.5 s after the relay was back.
RECONNECT_FIRST = 0.1  # s, the first wait after a connection drops
RECONNECT_CAP = 0.8  # s, the longest wait between two attempts
RECONNECT_JITTER = 0.5  # the wait is the backoff times a factor in [this, 1]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def clock_from_environ(environ: Mapping[str, str]) -> Callable[[], int]:
    """The system clock, plus TENCHAT_CLOCK_OFFSET_MS if set (common.clock); made once at
    start by the entry points, then passed to Client."""
    offset = clock_offset(environ)
    if not offset:
        return now_ms
    return lambda: now_ms() + offset


class PeerError(TenchatError):
    """The peer can't be used: unknown handle, blocked, or a broken binding."""


# The most proof-of-work bits a client solves for a relay (~16 M hashes, seconds); the
# relay's default is 20. A relay may ask up to 32 (hours): refused, not solved.
MAX_POW_BITS = 24


class KeyChanged(PeerError):
    """The relay says a contact's handle belongs to a new identity key: nothing the user
    writes is sent to either key until the user accepts (Client.accept_key) or refuses
    (Client.reject_key) the new one. ``contact`` is the pending new key."""

    def __init__(self, contact: ContactRow) -> None:
        self.contact = contact
        name = contact.claimed or contact.handle or fingerprint(contact.user)
        super().__init__(
            f"@{name}'s identity key changed, so nothing is sent until you decide. Compare "
            f"safety numbers (`tenchat contacts verify {name}`), then accept the new key "
            f"with `tenchat contacts accept-key {name}` (or `reject-key`)")


class QueuedOffline(TenchatError):
    """The message is safe in the outbox, but the relay could not be reached to send it."""


@dataclass(frozen=True, slots=True)
class Conversation:
    """A row of the conversation list."""

    peer: bytes
    handle: str | None
    last: MessageRow | None  # the latest message, for the preview
    unread: int
    pinned: bool
    muted: bool
    blocked: bool
    online: bool | None  # None: unknown (not connected, or not watched yet)
    group_name: str | None = None  # set for a group (then ``peer`` is the 16-byte group id)
    timer: int = 0  # disappearing-message timer, seconds
    verified: bool = False  # we marked the peer's safety number verified

    @property
    def is_group(self) -> bool:
        return len(self.peer) == 16

    @property
    def title(self) -> str:
        return self.group_name if self.is_group and self.group_name is not None else (
            f"@{self.handle}" if self.handle else "?")


@dataclass(frozen=True, slots=True)
class SearchHit:
    message: MessageRow
    handle: str | None
    snippet: str  # the matching text with [ ] around the hits


OnMessages = Callable[[list[MessageRow]], Awaitable[None] | None]
Receipts = dict[tuple[bytes, bytes | None], list[bytes]]  # (to, group) -> message ids
Opened = list[tuple[bytes, bytes | CryptoError]]  # (sender, plaintext or why it isn't)

# Privacy controls and their defaults (stored per identity in the cache).
PRIVACY_DEFAULTS: dict[str, bool] = {
    "read_receipts": True,  # send read receipts
    "typing": True,  # send typing indicators
    "hide_presence": False,  # the relay shows us offline to everyone
    "incognito": False,  # view stories without a view receipt
}


def _starts_session(body: bytes) -> bool:
    """A prekey envelope (it may start a session). A body that is no envelope at all is
    not: the short path drops it as undecryptable, like any other."""
    try:
        return envelope_kind(body) == "prekey"
    except CryptoError:
        return False


def _privacy(raw: bytes | str | int | None, name: str) -> bool:
    """A privacy setting's value as stored in the cache's meta table (None: the default)."""
    return PRIVACY_DEFAULTS[name] if raw is None else raw in (1, b"1", "1")


def ca_file_of(home: Path, relay_url: str) -> str | None:
    """The CA file to verify a wss:// relay with: TENCHAT_CA_FILE, else ``ca_file`` in
    HOME/config.toml, else None (the system's CAs)."""
    if not relay_url.lower().startswith("wss://"):
        return None
    if env := os.environ.get("TENCHAT_CA_FILE"):
        return env
    from .settings import SettingsError, load_settings

    try:
        return load_settings(home).ca_file or None
    except SettingsError as exc:
        raise TenchatError(str(exc)) from None


def check_text(text: str) -> None:
    """Refuse an empty or over-long message before anything is resolved or queued."""
    if not text.strip():
        raise TenchatError("refusing to send an empty message")
    if len(text) > c.MAX_TEXT:
        raise TenchatError(f"message too long ({len(text)} > {c.MAX_TEXT} characters)")


def mentions(text: str, handle: str) -> bool:
    """Does ``text`` mention ``@handle`` (case-insensitive, whole word)?"""
    return re.search(rf"(?<![\w@])@{re.escape(handle)}(?!\w)", text, re.IGNORECASE) is not None
Listener = Callable[[Event], None]


def attachment_text(ref: MediaRef, caption: str) -> str:
    """What an attachment shows as a message's text: its caption, else "[file name]"."""
    return caption if caption.strip() else f"[{ref.name or 'file'}]"


class Client:
    """One unlocked identity: keys, cache, relay connection."""

    def __init__(self, home: Path, relay_url: str, secrets: Secrets, cache: Cache, *,
                 clock: Callable[[], int] = now_ms, lock: HomeLock | None = None) -> None:
        self.home = home
        self.clock = clock  # ms; stories expire by it (tests pass one that runs ahead)
        self.relay_url = relay_url  # one URL, or several of one relay: "ws://a,ws://b"
        self.relays = RelayList(relay_url)  # which of them to dial (failover)
        self.secrets = secrets
        self.identity = IdentityKey.from_seed(secrets.identity_seed)
        self.user = self.identity.public
        self.cache = cache
        self._conn: RelayConnection | None = None
        self._conn_lock = asyncio.Lock()
        # One cache transaction at a time, in this process and across processes on this
        # home (an OS file lock per transaction: client/homelock.py).
        self._crypto_lock = lock or HomeLock(home)
        self._refill: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []
        self.groups = GroupService(self)
        self.polls = PollService(self)
        self._flush_lock = asyncio.Lock()
        self._background: set[asyncio.Task[object]] = set()
        self.connection_state = OFFLINE
        self.unsent: dict[bytes, TenchatError] = {}  # outbox items the last flush couldn't send
        self.presence: dict[bytes, bool] = {}  # watched peers; absent = unknown

    # The services a `tenchat send` never touches are imported on first use (start-up
    # time: docs/performance.md wants the whole command under 0.5 s).

    @functools.cached_property
    def social(self) -> SocialService:
        from .social import SocialService

        return SocialService(self)

    @functools.cached_property
    def stories(self) -> StoryService:
        from .stories import StoryService

        return StoryService(self)

    @functools.cached_property
    def stickers(self) -> StickerService:
        from .stickers import StickerService

        return StickerService(self)

    @functools.cached_property
    def wallet(self) -> WalletService:
        from .wallet.service import WalletService

        return WalletService(self)

    # --- lifecycle ----------------------------------------------------------------------

    @classmethod
    async def create(cls, home: Path, relay_url: str, handle: str, passphrase: str,
                     invite: str = "") -> Client:
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
            spk = make_signed_prekey(identity, 1)
            otks = make_one_time_prekeys(1, OTK_BATCH)
            await conn.request(
                f.PublishPrekeys, user=identity.public,
                spk=f.SignedPrekey(key_id=spk.key_id, pub=spk.public, sig=spk.sig),
                otks=[f.OneTimePrekey(key_id=k.key_id, pub=k.public) for k in otks],
            )
        finally:
            await conn.close()
        cache = await Cache.open(home, secrets.storage_key)
        now = now_ms()
        await cache.put_prekey("spk", spk.key_id, spk.public, spk.private, now)
        for k in otks:
            await cache.put_prekey("otk", k.key_id, k.public, k.private, now)
        await cache.set_meta(SPK_PUBLISHED, spk.key_id)
        await cache.set_meta(OTK_NEXT, OTK_BATCH + 1)
        await cache.set_meta(OTK_PUBLISHED, OTK_BATCH)
        await cache.commit()
        keystore.save(secrets, passphrase)
        from .known_relays import KnownRelays

        known = KnownRelays(known_relays_path(home))
        if known.get(conn.origin) is None:  # pinned only once the identity exists
            known.pin(conn.origin, conn.relay_name)
        return cls(home, relay_url, secrets, cache)

    @classmethod
    async def unlock(cls, home: Path, relay_url: str | None, passphrase: str) -> Client:
        return await cls.from_secrets(home, relay_url,
                                     Keystore.in_home(home).load(passphrase, upgrade=True))

    @classmethod
    async def from_secrets(cls, home: Path, relay_url: str | None, secrets: Secrets, *,
                           clock: Callable[[], int] = now_ms) -> Client:
        """The client of an unlocked keystore (``Keystore.load``); its relay: ``relay_url``,
        else ``relay`` in HOME/config.toml, else the one the identity was created with."""
        if not relay_url:
            from .settings import SettingsError, load_settings

            try:
                relay_url = load_settings(home).relay or None
            except SettingsError as exc:
                raise TenchatError(str(exc)) from None
        lock = HomeLock(home)
        try:
            async with lock:  # opening may write (migrations, settings): one at a time
                cache = await Cache.open(home, secrets.storage_key)
        except BaseException:
            lock.close()
            raise
        return cls(home, relay_url or secrets.relay, secrets, cache, clock=clock, lock=lock)

    async def close(self) -> None:
        self._closed = True  # a run()/sync(follow=True) loop ends instead of reconnecting
        for task in list(self._background):
            task.cancel()
        await self._drop_connection()
        await self.cache.close()
        self._crypto_lock.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- identity -----------------------------------------------------------------------

    @property
    def handle(self) -> str:
        return self.secrets.handle

    def whoami(self) -> dict[str, str]:
        return {"user_id": self.user.hex(), "handle": self.handle,
                "fingerprint": fingerprint(self.user), "relay": self.relay_url}

    # --- live events --------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every event (in the loop); returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a UI bug must not break message handling
                log.exception("event listener failed")

    def _set_state(self, state: str, *, retry_in: float | None = None, error: str = "") -> None:
        self.connection_state = state
        if state != ONLINE:
            self.presence.clear()
        self._emit(ConnectionChanged(state, retry_in, error))

    def _spawn(self, coro: Awaitable[object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- connection ---------------------------------------------------------------------

    async def connection(self) -> RelayConnection:
        async with self._conn_lock:
            if self._conn is None or self._conn.closed.is_set():
                conn, authed = await open_first(self.relays, lambda url: RelayConnection(
                    url, user=self.user, sign=self.identity.sign,
                    ca_file=ca_file_of(self.home, url), known=known_relays_path(self.home)))
                self._conn = conn
                await self._tell_relay_privacy(conn)
                # Also when we hold far more private keys than the relay does plus the
                # few handed-out ones we keep (a home from before keys were pruned).
                refill = authed.otk_count < OTK_LOW or await self.cache.prekey_count(
                    "otk") > authed.otk_count + self.prekey_policy.keep_taken + OTK_BATCH
                if refill or await self._spk_due(now_ms()):
                    # In the background: the caller may hold the cache lock the upkeep needs.
                    self._refill = asyncio.create_task(
                        self.maintain_prekeys(conn, refill=refill))
            return self._conn

    async def _tell_relay_privacy(self, conn: RelayConnection) -> None:
        """The relay enforces two privacy controls for us: presence hiding and blocks.
        hide_presence is sent either way: off must undo an earlier on."""
        await conn.request(f.Privacy, hide_presence=await self.setting("hide_presence"))
        for contact in await self.cache.contacts():
            if contact.blocked:
                await conn.request(f.Block, user=contact.user, blocked=True)

    async def _drop_connection(self) -> None:
        """Close the relay connection, letting a prekey refill in flight finish first."""
        if self._refill is not None:
            try:
                async with asyncio.timeout(10):
                    await self._refill
            except (TenchatError, TimeoutError) as exc:
                log.warning("prekey refill did not finish: %s", exc)
            self._refill = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @functools.cached_property
    def prekey_policy(self) -> PrekeyPolicy:
        """Signed prekey rotation and grace from HOME/config.toml ([prekeys])."""
        from .settings import SettingsError, load_settings

        try:
            settings = load_settings(self.home)
        except SettingsError as exc:
            raise TenchatError(str(exc)) from None
        return PrekeyPolicy(rotate_ms=int(settings.spk_rotate_days * DAY_MS),
                            grace_ms=int(settings.spk_grace_days * DAY_MS))

    async def _spk_due(self, now: int) -> bool:
        """A new signed prekey is due, or the newest one never reached the relay."""
        spks = await self.cache.prekey_ages("spk")
        published = await self.cache.get_meta(SPK_PUBLISHED)
        return spk_rotation_due(spks, now, self.prekey_policy) or (
            published is not None and spks != [] and int(published) != spks[-1][0])

    async def maintain_prekeys(self, conn: RelayConnection, *, refill: bool,
                               now: int | None = None) -> None:
        """Prekey upkeep (common/crypto/prekeys.py): make and publish a new signed prekey
        when one is due and delete replaced ones past their grace; with ``refill``, publish
        again a batch whose publish was never confirmed, ask the relay's count, publish a
        batch of one-time prekeys if it is low, and delete the private ones the relay no
        longer holds beyond the policy's few. Under the home's lock, relay round trips
        included, so two processes never number keys alike or rotate twice."""
        now = now_ms() if now is None else now
        policy = self.prekey_policy
        async with self._crypto_lock:
            try:
                await self._rotate_spk(conn, now, policy)
                if refill:
                    await self._refill_otks(conn, now, policy)
            except BaseException:
                await self.cache.rollback()
                raise

    async def _rotate_spk(self, conn: RelayConnection, now: int, policy: PrekeyPolicy) -> None:
        spks = await self.cache.prekey_ages("spk")
        raw = await self.cache.get_meta(SPK_PUBLISHED)
        # Homes made before this was recorded published their only signed prekey at init.
        published = int(raw) if raw is not None else (spks[-1][0] if spks else 0)
        if spk_rotation_due(spks, now, policy):
            spk = make_signed_prekey(self.identity, spks[-1][0] + 1 if spks else 1)
            # Stored (durably) before the relay hands it out: never a public key on the
            # relay whose private half we lack.
            await self.cache.put_prekey("spk", spk.key_id, spk.public, spk.private, now)
            await self.cache.commit()
            spks.append((spk.key_id, now))
        newest_id = spks[-1][0]
        if newest_id != published:
            private = await self.cache.prekey_private("spk", newest_id)
            assert private is not None
            pub = X25519KeyPair.from_private(private).public
            await conn.request(f.PublishPrekeys, user=self.user, spk=f.SignedPrekey(
                key_id=newest_id, pub=pub, sig=self.identity.sign(signed_prekey_message(pub))))
            await self.cache.set_meta(SPK_PUBLISHED, newest_id)
            published = newest_id
        # Only what the relay has seen replaced counts: a rotation whose publish failed
        # doesn't start the old key's grace.
        gone = spks_to_delete([s for s in spks if s[0] <= published], now, policy)
        if gone:
            await self.cache.delete_prekeys("spk", gone)
        await self.cache.commit()

    async def _refill_otks(self, conn: RelayConnection, now: int, policy: PrekeyPolicy
                           ) -> None:
        # A batch stored but never confirmed (the connection dropped): publish it again.
        # The relay ignores ids it already holds, so this is safe either way, and then
        # "the relay holds our highest ids" is true again.
        raw = await self.cache.get_meta(OTK_PUBLISHED)
        if raw is not None and (unconfirmed := await self.cache.prekey_publics("otk", int(raw))):
            await self._publish_otks(conn, unconfirmed)
        # The relay's count now (a publish of nothing answers it): a prekeys_low push is
        # old news once a refill has run, and a drain sends up to otk_low of them.
        status = await conn.request(f.PublishPrekeys, user=self.user)
        assert isinstance(status, f.PrekeyStatus)
        if status.otk_count < OTK_LOW:
            raw = await self.cache.get_meta(OTK_NEXT)
            start = max(int(raw) if raw is not None else 1,
                        await self.cache.max_prekey_id("otk") + 1)
            otks = make_one_time_prekeys(start, OTK_BATCH)
            for k in otks:
                await self.cache.put_prekey("otk", k.key_id, k.public, k.private, now)
            await self.cache.set_meta(OTK_NEXT, start + OTK_BATCH)
            await self.cache.commit()  # durable before the relay can hand any of them out
            status = await self._publish_otks(conn, [(k.key_id, k.public) for k in otks])
        held = [key_id for key_id, _ in await self.cache.prekey_ages("otk")]
        gone = otks_to_delete(held, status.otk_count, policy)
        if gone:
            await self.cache.delete_prekeys("otk", gone)
            log.info("deleted %d one-time prekeys the relay no longer holds", len(gone))
        await self.cache.commit()

    async def _publish_otks(self, conn: RelayConnection, keys: list[tuple[int, bytes]]
                            ) -> f.PrekeyStatus:
        status = await conn.request(
            f.PublishPrekeys, user=self.user,
            otks=[f.OneTimePrekey(key_id=key_id, pub=pub) for key_id, pub in keys])
        assert isinstance(status, f.PrekeyStatus)
        await self.cache.set_meta(OTK_PUBLISHED, keys[-1][0])
        await self.cache.commit()
        return status

    # --- peers --------------------------------------------------------------------------

    async def resolve(self, peer: str) -> ContactRow:
        """The contact for a handle, looked up and its binding verified on first use."""
        handle = normalize_handle(peer)
        known = await self.cache.contact_by_handle(handle)
        if known is not None:
            return known
        conn = await self.connection()
        try:
            info = await conn.request(f.Lookup, handle=handle)
        except RelayError as exc:
            if exc.code == "not_found":
                raise PeerError(f"no user @{handle} on {self.relay_url}") from None
            raise
        assert isinstance(info, f.HandleInfo)
        # The relay is untrusted: the binding must be signed by the key it names.
        if info.handle != handle or not verify_signature(
            info.user, handle_message(handle, info.user), info.sig
        ):
            raise PeerError(f"the relay's record for @{handle} is not validly signed")
        async with self._crypto_lock:
            await self.cache.remember_contact(info.user, handle, now_ms())
            await self.cache.commit()
        contact = await self.cache.contact(info.user)
        assert contact is not None
        return contact

    async def _name_sender(self, user: bytes, *, spoke: bool = True) -> None:
        """Learn the handle of a key we have not seen before (best effort), from the
        relay's signed ``whois`` binding, which the key itself signs, so anyone can make
        one for any handle. A handle already pinned here to another key is never moved on
        the relay's word (security review H1): when ``spoke`` (a message came from this
        key) it becomes a pending key change, shown on every message from the key and
        held back from sending until the user accepts it (``contacts accept-key``);
        without a message from the key (group members, social records) it is ignored."""
        if await self.cache.contact(user) is not None:
            return
        handle: str | None = None
        try:
            conn = await self.connection()
            info = await conn.request(f.Whois, user=user)
            if isinstance(info, f.HandleInfo) and verify_signature(
                user, handle_message(info.handle, user), info.sig
            ):
                handle = normalize_handle(info.handle)
        except (RelayError, ConnectionLost, ProtocolError):
            pass
        if handle is not None and not spoke:
            pinned = await self.cache.contact_by_handle(handle)
            if pinned is not None and pinned.user != user:
                handle = None
        if handle is None:
            await self.cache.remember_contact(user, None, now_ms())
            return
        old = await self.cache.record_key_change(handle, user, now_ms())
        if old is not None:
            log.warning("the relay says @%s has a new identity key (%s -> %s); pending until "
                        "accepted", handle, fingerprint(old.user), fingerprint(user))

    async def pending_key(self, peer: str) -> tuple[ContactRow, ContactRow | None]:
        """``peer``'s pinned contact and its pending key change, if any."""
        contact = await self.resolve(peer)
        return contact, await self.cache.pending_key(contact.user)

    async def set_verified(self, peer: str, verified: bool) -> ContactRow:
        """Record (or take back) that the user compared safety numbers with ``peer``
        (``contacts verify --mark``). Marking the current key verified also accepts it
        if it had changed."""
        contact = await self.resolve(peer)
        async with self._crypto_lock:
            await self.cache.set_contact_flag(contact.user, "verified", verified)
            if verified:
                await self.cache.accept_key(contact.user)
            await self.cache.commit()
        self._emit(ConversationChanged(contact.user))
        return (await self.cache.contact(contact.user)) or contact

    async def accept_key(self, peer: str) -> ContactRow:
        """Accept ``peer``'s pending identity key change: the handle moves to the new key
        (unverified) and sending to it resumes. TenchatError if there is none."""
        contact, pending = await self.pending_key(peer)
        if pending is None:
            raise TenchatError(f"@{contact.handle}'s identity key has not changed")
        async with self._crypto_lock:
            await self.cache.accept_key(pending.user)
            await self.cache.commit()
        self._emit(ConversationChanged(pending.user))
        self._emit(ConversationChanged(contact.user))
        return (await self.cache.contact(pending.user)) or pending

    async def reject_key(self, peer: str) -> ContactRow:
        """Refuse ``peer``'s pending identity key change: the handle stays with the key it
        was pinned to and the new key's messages show under its fingerprint."""
        contact, pending = await self.pending_key(peer)
        if pending is None:
            raise TenchatError(f"@{contact.handle}'s identity key has not changed")
        async with self._crypto_lock:
            await self.cache.reject_key(pending.user)
            await self.cache.commit()
        self._emit(ConversationChanged(pending.user))
        return contact

    async def check_key_accepted(self, peer: bytes, *, typed: bool = True) -> None:
        """KeyChanged if ``peer`` (a user id) is a pending new key the user has not
        accepted, or (``typed``: content the user wrote) a contact whose handle has a
        pending key change: the user must decide which key is theirs first."""
        if len(peer) != 32:
            return
        contact = await self.cache.contact(peer)
        if contact is not None and contact.needs_acceptance:
            raise KeyChanged(contact)
        if typed and contact is not None and contact.handle is not None:
            pending = await self.cache.pending_key(peer)
            if pending is not None:
                raise KeyChanged(pending)

    async def contacts(self) -> list[ContactRow]:
        return await self.cache.contacts()

    async def add_contact(self, peer: str) -> ContactRow:
        contact = await self.resolve(peer)
        async with self._crypto_lock:
            await self.cache.set_contact_flag(contact.user, "added", True)
            await self.cache.commit()
        return (await self.cache.contact(contact.user)) or contact

    async def moderate(self, action: str, target: str, reason: str = "") -> bytes:
        """A moderator's or admin's action on the relay (the relay checks the role):
        remove_post / remove_comment (target: the full hex id), ban / unban (target: a
        handle). The target's bytes."""
        if action not in f.MODERATE_ACTIONS:
            raise TenchatError(f"unknown action {action!r}; one of "
                               + ", ".join(a.replace("_", "-") for a in f.MODERATE_ACTIONS))
        if action in ("ban", "unban"):
            target_id = (await self.resolve(target)).user
        else:
            try:
                target_id = bytes.fromhex(target)
            except ValueError:
                raise TenchatError("give the full id in hex") from None
            if not 1 <= len(target_id) <= 64:
                raise TenchatError("give the full id in hex")
        conn = await self.connection()
        await conn.request(f.Moderate, action=action, target=target_id, reason=reason)
        return target_id

    async def set_blocked(self, peer: str, blocked: bool) -> ContactRow:
        contact = await self.resolve(peer)
        async with self._crypto_lock:
            await self.cache.set_contact_flag(contact.user, "blocked", blocked)
            await self.cache.commit()
        with contextlib.suppress(ConnectionLost, RelayUnreachable, RelayError):
            conn = await self.connection()
            await conn.request(f.Block, user=contact.user, blocked=blocked)
        self._emit(ConversationChanged(contact.user))
        return (await self.cache.contact(contact.user)) or contact

    async def safety_number(self, peer: str) -> tuple[ContactRow, str]:
        contact = await self.resolve(peer)
        return contact, safety_number(self.user, contact.user)

    async def display_name(self, user: bytes) -> str:
        """A handle, or for a pending key change the handle it claims marked
        ``(NEW KEY)``, or the key's fingerprint."""
        contact = await self.cache.contact(user)
        if contact is not None and contact.handle:
            return contact.handle
        if contact is not None and contact.claimed:
            return f"{contact.claimed} (NEW KEY)"
        return fingerprint(user)

    # --- sending ------------------------------------------------------------------------

    async def _encrypt(self, peer: bytes, plaintext: bytes) -> bytes:
        """Encrypt for ``peer`` on the current session (starting one if needed), padded.

        Saves the advanced session in the open transaction; the caller commits. The caller
        holds the home's lock, so no other process starts a second session meanwhile.
        """
        record = SessionRecord.from_states(await self.cache.sessions(peer))
        if record.current is None:
            conn = await self.connection()
            try:
                bundle = await conn.request(f.FetchBundle, user=peer)
            except RelayError as exc:
                if exc.code == "not_found":
                    raise PeerError("the peer has published no prekeys") from None
                raise
            assert isinstance(bundle, f.Bundle)
            if bundle.user != peer:
                raise PeerError("the relay returned a prekey bundle for another identity")
            record.install(Session.initiate(
                self.identity, peer, bundle.spk.key_id, bundle.spk.pub, bundle.spk.sig,
                bundle.otk.key_id if bundle.otk else None, bundle.otk.pub if bundle.otk else None,
            ))
        envelope = record.encrypt(pad(plaintext))  # common/padding.py: sizes say little
        await self._save_record(peer, record)
        return envelope

    async def _save_record(self, peer: bytes, record: SessionRecord) -> None:
        """Store what ``record`` changed (in the open transaction), in the order it was
        used, so the stored order (used_at) is the record's: the current one first."""
        now = now_ms()
        for row_id, session in record.changed:
            await self.cache.save_session(peer, row_id, session.to_bytes(), now,
                                          keep=1 + MAX_PREVIOUS_SESSIONS)
        if record.dropped:
            await self.cache.delete_sessions(record.dropped)

    async def send_text(self, peer: str, text: str, *,
                        reply_to: bytes | None = None) -> MessageRow:
        """Encrypt, commit to the outbox, and send; returns once the relay has stored it."""
        check_text(text)
        contact = await self.resolve(peer)
        if contact.blocked:
            raise PeerError(f"@{contact.handle} is blocked; unblock them to send")
        return await self.send_text_to(contact.user, text, reply_to=reply_to)

    async def send_text_to(self, conv: bytes, text: str, *,
                           reply_to: bytes | None = None) -> MessageRow:
        """As send_text, to a conversation id (a user id, or a group id)."""
        check_text(text)
        message = await self.queue_text(conv, text, reply_to=reply_to)
        return await self._send_queued(conv, message)

    async def _send_queued(self, conv: bytes, message: MessageRow) -> MessageRow:
        try:
            await self.flush_outbox()
        except (RelayUnreachable, ConnectionLost) as exc:
            raise QueuedOffline(
                f"{exc}; message {message.id.hex()} is queued as pending and goes out "
                "with the next tenchat command that reaches the relay"
            ) from None
        if message.id in self.unsent:
            raise self.unsent[message.id]
        return (await self.cache.message(conv, message.id)) or message

    # --- attachments --------------------------------------------------------------------

    async def send_attachment(self, peer: str, path: Path, caption: str = "", *,
                              reply_to: bytes | None = None) -> MessageRow:
        """Seal and upload a file, then send its reference (and key) end-to-end."""
        contact = await self.resolve(peer)
        if contact.blocked:
            raise PeerError(f"@{contact.handle} is blocked; unblock them to send")
        return await self.send_attachment_to(contact.user, path, caption, reply_to=reply_to)

    async def send_attachment_to(self, conv: bytes, path: Path, caption: str = "", *,
                                 reply_to: bytes | None = None) -> MessageRow:
        """As send_attachment, to a conversation id (a user id, or a group id). The upload
        needs the relay; the message then goes through the outbox like any other."""
        if len(caption) > c.MAX_TEXT:
            raise TenchatError(f"caption too long ({len(caption)} > {c.MAX_TEXT} characters)")
        if not path.is_file():
            raise AttachmentError(f"{path} is not a file")
        ref = await media.upload(self.connection, path)
        message = await self.queue_attachment(conv, ref, caption, reply_to=reply_to)
        return await self._send_queued(conv, message)

    async def attachment(self, msg_id: str) -> tuple[bytes, bytes, MediaRef]:
        """(conversation, message id, MediaRef) of the attachment whose message id is
        ``msg_id`` or starts with it (at least 6 hex digits)."""
        text = msg_id.lower()
        if len(text) < 6 or any(ch not in "0123456789abcdef" for ch in text):
            raise TenchatError(f"{msg_id!r} is not a message id (hex, from `history --json`)")
        found = await self.cache.find_attachments(text)
        if not found:
            raise TenchatError(f"no message {msg_id!r} with an attachment")
        if len(found) > 1:
            raise TenchatError(f"{msg_id!r} matches several messages; give more digits")
        conv, mid, raw = found[0]
        return conv, mid, msgspec.msgpack.decode(raw, type=MediaRef)

    async def attachments(self, conv: bytes, ids: list[bytes]) -> dict[bytes, MediaRef]:
        raw = await self.cache.attachments(conv, ids)
        return {k: msgspec.msgpack.decode(v, type=MediaRef) for k, v in raw.items()}

    async def download(self, ref: MediaRef, out: Path) -> int:
        """Fetch, verify and decrypt an attachment into ``out``; nothing there on failure."""
        return await media.download(self.connection, ref, out)

    async def queue_text(self, peer: bytes, text: str, *,
                         reply_to: bytes | None = None) -> MessageRow:
        """Encrypt a text message into the outbox (committed); nothing is sent yet.

        ``peer`` is a user id, or a group id (16 bytes) for a group message.
        """
        msg_id = os.urandom(16)
        now = now_ms()
        timer = await self.cache.timer(peer)
        body = c.encode_content(c.Text(id=msg_id, text=text, sent_at=now, reply_to=reply_to,
                                       expires_in=timer))
        return await self._queue_message(peer, msg_id, now, timer, body, text,
                                         reply_to=reply_to)

    async def queue_attachment(self, peer: bytes, ref: MediaRef, caption: str = "", *,
                               reply_to: bytes | None = None) -> MessageRow:
        """As queue_text, for a file already uploaded (``ref`` from client.media.upload)."""
        msg_id = os.urandom(16)
        now = now_ms()
        timer = await self.cache.timer(peer)
        body = c.encode_content(c.Attachment(id=msg_id, ref=ref, sent_at=now, caption=caption,
                                             reply_to=reply_to, expires_in=timer))
        return await self._queue_message(peer, msg_id, now, timer, body,
                                         attachment_text(ref, caption), reply_to=reply_to,
                                         ref=ref)

    async def _queue_message(self, peer: bytes, msg_id: bytes, now: int, timer: int,
                             body: bytes, text: str, *, reply_to: bytes | None,
                             ref: MediaRef | None = None,
                             also: Callable[[], Awaitable[object]] | None = None) -> MessageRow:
        expires_at = now + timer * 1000 if timer else 0
        async with self._crypto_lock:
            try:
                if len(peer) == 16:
                    await self.groups.queue(peer, msg_id, body, expires_at=expires_at)
                else:
                    await self._queue_content(peer, msg_id, body, expires_at=expires_at)
                message = MessageRow(msg_id, peer, True, text, now, now, PENDING,
                                     reply_to=reply_to, expires_at=expires_at)
                await self.cache.add_message(message, shown=True)
                if ref is not None:
                    await self.cache.put_attachment(peer, msg_id, msgspec.msgpack.encode(ref))
                if also is not None:  # e.g. the poll's row, in the same transaction
                    await also()
                await self.cache.commit()
            except BaseException:
                await self.cache.rollback()
                raise
        message = (await self.cache.message(peer, msg_id)) or message
        self._emit(MessageAdded(message))
        return message

    async def _queue_content(self, peer: bytes, msg_id: bytes, body: bytes, *,
                             expires_at: int = 0) -> None:
        """Into the outbox: encrypted now if a session exists, else sealed until the next
        flush can fetch the peer's prekeys (so composing works offline, to anyone).
        KeyChanged for a verified contact's new key the user has not accepted."""
        await self.check_key_accepted(peer)
        if await self.cache.sessions(peer):
            await self.cache.outbox_add(msg_id, peer, await self._encrypt(peer, body), now_ms(),
                                        expires_at=expires_at)
        else:
            await self.cache.outbox_defer(msg_id, peer, body, now_ms(), expires_at=expires_at)

    async def _queue_receipt(self, peer: bytes, kind: str, ids: list[bytes], *,
                             group: bytes | None = None) -> None:
        if peer == self.user:
            return
        try:
            await self.check_key_accepted(peer, typed=False)
        except KeyChanged:
            return  # no receipts to an unaccepted key either
        body = c.encode_content(c.Receipt(kind=kind, ids=ids, at=now_ms(), group=group))
        await self._queue_content(peer, os.urandom(16), body)

    async def encrypt_pending(self) -> dict[bytes, TenchatError]:
        """Encrypt queued content that waited for a session, in queue order.

        Returns the items that could not be encrypted yet (msg id -> why): they stay
        queued, and the other peers' messages go on.
        """
        failed: dict[bytes, TenchatError] = {}
        if not await self.cache.outbox_deferred():
            return failed
        stuck: set[bytes] = set()  # peers with a failed item: keep their messages in order
        async with self._crypto_lock:
            try:
                # Again under the lock: another process on this home may have encrypted
                # some of them meanwhile (they are in the outbox now, not deferred).
                deferred = await self.cache.outbox_deferred()
                for msg_id, peer, body in deferred:
                    if peer in stuck:
                        failed[msg_id] = TenchatError("waiting for an earlier message")
                        continue
                    try:
                        envelope = await self._encrypt(peer, body)
                    except (PeerError, RelayError, CryptoError) as exc:
                        # e.g. no prekeys, or a bundle not signed by the peer (a hostile
                        # relay): nothing is encrypted to a key we can't trust.
                        log.warning("can't start a session with %s: %s", fingerprint(peer), exc)
                        failed[msg_id] = exc
                        stuck.add(peer)
                        continue
                    await self.cache.outbox_encrypted(msg_id, envelope)
                await self.cache.commit()
            except BaseException:
                await self.cache.rollback()
                raise
        return failed

    async def flush_outbox(self) -> int:
        """Send everything in the outbox until the relay has stored it; returns the count."""
        async with self._flush_lock:  # one flush at a time; a second caller finds less to do
            self.unsent = await self.encrypt_pending()
            pending = await self.cache.outbox_items()
            if not pending:
                return 0
            conn = await self.connection()
            # Only what the user wrote makes the peer a contact for presence (review M3).
            written = await self.cache.written([m for m, _p, _e, k, _x in pending
                                                if k != "group"])
            sem = asyncio.Semaphore(SEND_WINDOW)
            stored: list[tuple[bytes, bytes]] = []
            failures: list[BaseException] = []

            async def one(msg_id: bytes, peer: bytes, envelope: bytes, kind: str,
                          expires_at: int) -> None:
                async with sem:
                    try:
                        if kind == "group":
                            await conn.request(f.GroupSend, group=peer, msg=msg_id,
                                               body=envelope, expires_at=expires_at)
                        else:
                            await conn.request(f.Send, to=peer, msg=msg_id, body=envelope,
                                               expires_at=expires_at,
                                               conv=msg_id in written)
                    except RelayError as exc:
                        if kind == "group" and exc.code == "forbidden":
                            # Removed from the group (the relay no longer lets us post):
                            # nothing more goes there; the message stays here, unsent.
                            gone_groups.append((msg_id, peer))
                            failures.append(GroupError(
                                "you are no longer a member of this group"))
                        else:
                            failures.append(exc)
                        return
                    stored.append((msg_id, peer))

            sent: dict[bytes, list[bytes]] = {}
            gone_groups: list[tuple[bytes, bytes]] = []
            try:
                await asyncio.gather(*(one(*item) for item in pending))
            finally:
                async with self._crypto_lock:
                    for msg_id, peer in stored:
                        if await self.cache.outbox_done(msg_id, peer):
                            sent.setdefault(peer, []).append(msg_id)
                    for msg_id, group in gone_groups:
                        await self.cache.outbox_drop(msg_id)
                        await self.cache.mark_group_left(group)
                    await self.cache.commit()
                for peer, ids in sent.items():
                    self._emit(StatusChanged(peer, ids, SENT))
            if failures:
                raise failures[0]
            return len(stored)

    async def compose(self, peer: bytes, text: str, *, reply_to: bytes | None = None
                      ) -> MessageRow:
        """Queue a message (pending) and send it in the background when online.

        Never fails for being offline: the outbox goes out on reconnect.
        """
        check_text(text)
        contact = await self.cache.contact(peer)
        if contact is not None and contact.blocked:
            raise PeerError(f"@{contact.handle} is blocked; unblock them to send")
        message = await self.queue_text(peer, text, reply_to=reply_to)
        if self.connection_state == ONLINE:
            self._spawn(self._flush_quietly())
        return message

    async def _flush_quietly(self) -> None:
        try:
            await self.flush_outbox()
        except (ConnectionLost, RelayUnreachable, RelayError) as exc:
            log.info("outbox flush deferred: %s", exc)

    # --- receiving ----------------------------------------------------------------------

    async def _decrypt(self, sender: bytes, envelope: bytes) -> bytes:
        """Decrypt with the sender's sessions (common.crypto.session.SessionRecord: the one
        that decrypts becomes current), or start one from a prekey envelope.

        A prekey envelope whose ephemeral key matches a session we hold belongs to
        that session: it is never used to start a second one, so a replayed first
        message (which X3DH alone can't tell apart without a one-time prekey) fails.
        """
        record = SessionRecord.from_states(await self.cache.sessions(sender))
        try:
            plaintext, used_otk = record.decrypt(envelope)
        except CryptoError:
            if envelope_kind(envelope) != "prekey":
                raise
            # Perhaps a new session: only now read the private prekeys.
            spks = await self.cache.prekey_privates("spk")
            otks = await self.cache.prekey_privates("otk")
            plaintext, used_otk = record.decrypt(
                envelope, identity=self.identity, sender=sender,
                spk_private_for=spks.get, otk_private_for=otks.get)
        await self._save_record(sender, record)
        if used_otk is not None:
            await self.cache.delete_prekey("otk", used_otk)
        return plaintext

    async def receive(self, items: list[f.Deliver | f.GroupDeliver]) -> list[MessageRow]:
        """Decrypt and commit a batch of deliveries (1:1 and group, in arrival order); then
        ack them and queue receipts.

        Returns the new text messages (duplicates and undecryptable items are dropped).
        """
        if all(type(item) is f.Deliver and not item.seq for item in items):
            await self._receive_signals(items)  # type: ignore[arg-type]
            return []
        new: list[MessageRow] = []
        receipts: Receipts = {}
        events: list[Event] = []
        async with self._crypto_lock:
            try:
                await self.purge_expired(events)
                for item in items:
                    if isinstance(item, f.GroupDeliver):
                        await self.groups.receive_one(item, new, receipts, events)
                    else:
                        await self._receive_one(item, new, receipts, events)
                await self.polls.publish_due()  # tallies of our anonymous polls that got votes
                for (peer, group), ids in receipts.items():
                    await self._queue_receipt(peer, c.DELIVERED, ids, group=group)
                await self.cache.commit()
            except BaseException:
                await self.cache.rollback()
                raise
        # Committed: tell the UI now, so a connection lost while acking can't hide what
        # is already in the cache (the relay redelivers; duplicates are dropped).
        for event in events:
            self._emit(event)
        conn = await self.connection()
        seqs = [item.seq for item in items if isinstance(item, f.Deliver) and item.seq]
        if seqs:
            await conn.request(f.Ack, seqs=seqs)
        upto: dict[bytes, int] = {}
        for item in items:
            if isinstance(item, f.GroupDeliver) and item.gseq:
                upto[item.group] = max(upto.get(item.group, 0), item.gseq)
        for group, gseq in upto.items():
            with contextlib.suppress(RelayError):  # e.g. we were just removed
                await conn.request(f.GroupAck, group=group, upto=gseq)
        if self.connection_state == ONLINE and any(
            m.peer not in self.presence and len(m.peer) == 32 for m in new
        ):
            self._spawn(self._rewatch())  # a conversation that began with their message
        return new

    async def _receive_signals(self, items: list[f.Deliver]) -> None:
        """Ephemeral 1:1 deliveries (seq 0: never stored, never acked), which carry typing
        indicators only: the short path — decrypt, commit the session's advance, emit.
        Any other content sent this way is dropped (it would bypass the queue's order)."""
        if any(_starts_session(item.body) for item in items):
            opened = await self._open_signals(items)
        else:
            opened = await self._open_signals_fast(items)
        for sender, plaintext in opened:
            try:
                if isinstance(plaintext, CryptoError):
                    raise plaintext
                content = c.decode_content(plaintext)
            except (CryptoError, msgspec.MsgspecError) as exc:
                log.warning("dropped an undecryptable signal from %s: %s",
                            fingerprint(sender), type(exc).__name__)
                continue
            if isinstance(content, c.Typing):
                self._emit(TypingChanged(sender, content.active))
            else:
                log.warning("dropped a %s sent as an ephemeral message by %s",
                            type(content).__name__, fingerprint(sender))

    async def _open_signals(self, items: list[f.Deliver]) -> Opened:
        """Decrypt (a prekey envelope may start a session) and commit: (sender, plaintext or
        why not) for each item not from a blocked peer."""
        opened: Opened = []
        async with self._crypto_lock:
            try:
                for item in items:
                    contact = await self.cache.contact(item.sender)
                    if contact is not None and contact.blocked:
                        continue
                    try:
                        opened.append((item.sender, await self._decrypt(item.sender, item.body)))
                    except CryptoError as exc:
                        opened.append((item.sender, exc))
                await self.cache.commit()
            except BaseException:
                await self.cache.rollback()
                raise
        return opened

    async def _open_signals_fast(self, items: list[f.Deliver]) -> Opened:
        """As _open_signals for envelopes on existing sessions (the usual case), in one
        hand-off to the cache's thread."""
        now = now_ms()

        def decrypt(tx: Txn) -> Opened:
            out: Opened = []
            for item in items:
                contact = tx.contact(item.sender)
                if contact is not None and contact.blocked:
                    continue
                opened: bytes | CryptoError
                record = SessionRecord.from_states(tx.sessions(item.sender))
                try:
                    opened = record.decrypt(item.body)[0]
                except CryptoError as exc:
                    opened = exc
                for row_id, session in record.changed:  # no new session on this path
                    assert row_id is not None
                    tx.update_session(row_id, session.to_bytes(), now)
                out.append((item.sender, opened))
            return out

        async with self._crypto_lock:
            return await self.cache.transact(decrypt, durable=False)

    async def purge_expired(self, events: list[Event] | None = None) -> int:
        """Delete disappearing messages whose time is up (in the open transaction)."""
        gone = await self.cache.purge_expired(now_ms())
        for conv in {conv for conv, _ in gone}:
            (events if events is not None else []).append(ConversationChanged(conv))
        return len(gone)

    async def _rewatch(self) -> None:
        with contextlib.suppress(ConnectionLost, RelayError, RelayUnreachable):
            await self._watch(await self.connection())

    async def _receive_one(self, item: f.Deliver, new: list[MessageRow],
                           receipts: dict[bytes, list[bytes]], events: list[Event]) -> None:
        sender = item.sender
        contact = await self.cache.contact(sender)
        if contact is not None and contact.blocked:
            return
        try:
            plaintext = await self._decrypt(sender, item.body)
            content = c.decode_content(plaintext)
        except (CryptoError, msgspec.MsgspecError) as exc:
            # Never log the body; the sender and the kind of failure are enough.
            log.warning("dropped an undecryptable message from %s: %s",
                        fingerprint(sender), type(exc).__name__)
            return
        if not item.seq and not isinstance(content, c.Typing):
            # Ephemeral (never queued, never acked): it carries typing indicators only.
            log.warning("dropped a %s sent as an ephemeral message by %s",
                        type(content).__name__, fingerprint(sender))
            return
        if contact is None:
            await self._name_sender(sender)
        if isinstance(content, c.SenderKeyDist):
            await self.groups.receive_distribution(sender, content, new, receipts, events)
            return
        await self.apply_content(sender, sender, content, None, new, receipts, events)

    async def apply_content(self, conv: bytes, author: bytes, content: c.Content,
                            group: GroupState | None, new: list[MessageRow],
                            receipts: Receipts, events: list[Event]) -> None:
        """What a peer's decrypted content does to conversation ``conv`` (a peer's user id,
        or a group id with ``group`` its verified state). The relay can't tell these apart."""
        in_group = group is not None
        match content:
            case c.Text():
                now = now_ms()
                expires_at = now + content.expires_in * 1000 if content.expires_in else 0
                row = MessageRow(content.id, conv, False, content.text, content.sent_at, now,
                                 DELIVERED, sender=author if in_group else None,
                                 reply_to=content.reply_to,
                                 mention=mentions(content.text, self.handle),
                                 expires_at=expires_at)
                if await self.cache.add_message(row, shown=False):
                    row = (await self.cache.message(conv, content.id)) or row
                    new.append(row)
                    receipts.setdefault((author, conv if in_group else None),
                                        []).append(content.id)
                    events.append(MessageAdded(row))
            case c.Attachment():
                now = now_ms()
                expires_at = now + content.expires_in * 1000 if content.expires_in else 0
                text = attachment_text(content.ref, content.caption)
                row = MessageRow(content.id, conv, False, text, content.sent_at, now,
                                 DELIVERED, sender=author if in_group else None,
                                 reply_to=content.reply_to,
                                 mention=mentions(content.caption, self.handle),
                                 expires_at=expires_at)
                if await self.cache.add_message(row, shown=False):
                    await self.cache.put_attachment(conv, content.id,
                                                    msgspec.msgpack.encode(content.ref))
                    row = (await self.cache.message(conv, content.id)) or row
                    new.append(row)
                    receipts.setdefault((author, conv if in_group else None),
                                        []).append(content.id)
                    events.append(MessageAdded(row))
            case c.Receipt():
                status = READ if content.kind == c.READ else DELIVERED
                if content.group is not None:
                    # A receipt for our group message counts only from a member of that
                    # group (as we know it): anyone else could mark our messages read.
                    state = await self.groups.state(content.group)
                    if in_group or state is None or author not in state.roles:
                        log.info("dropped a receipt naming a group its sender is not in")
                        return
                    target_conv = content.group
                    await self.cache.record_receipts(target_conv, content.ids, author, status)
                else:
                    target_conv = author
                changed = await self.cache.raise_status(target_conv, content.ids, status)
                if changed or content.group is not None:
                    events.append(StatusChanged(target_conv, changed or content.ids, status))
            case c.Typing():
                if not in_group:
                    events.append(TypingChanged(author, content.active))
            case c.Reaction():
                if await self.cache.react(conv, content.target, author, content.emoji,
                                          content.remove):
                    events.append(MessageChanged(conv, content.target))
            case c.Edit():
                if await self.cache.edit_message(conv, content.target, author, in_group,
                                                 content.text,
                                                 mention=mentions(content.text, self.handle)):
                    events.append(MessageChanged(conv, content.target))
            case c.Delete():
                if await self.cache.delete_message(conv, content.target, author, in_group):
                    events.append(MessageChanged(conv, content.target))
            case c.Pin():
                # In groups only admins pin; the relay can't check (it can't read this).
                allowed = group is None or can_pin(group.roles.get(author))
                if allowed and await self.cache.set_pinned(conv, content.target,
                                                           content.pinned):
                    events.append(MessageChanged(conv, content.target))
            case c.Timer():
                if group is None or author in group.roles:
                    await self.cache.set_timer(conv, content.seconds)
                    events.append(ConversationChanged(conv))
            case c.Gift():
                if not in_group:  # 1:1 only; what it is worth is read from the chain
                    await self.wallet.receive_gift(author, content, new, receipts, events)
            case c.AudienceKey():
                if not in_group:  # 1:1 only: the pairwise session authenticates the author
                    await self.cache.put_audience_key(author, content.key_id, content.key,
                                                      now_ms())
            case c.StoryKey():
                if not in_group:  # a close-friends key, likewise 1:1 only
                    await self.cache.put_story_key(author, content.key_id, content.key,
                                                   now_ms())
            case c.StoryViewed():
                # A view receipt counts only on our own story, and only 1:1.
                if not in_group and await self.cache.add_story_view(
                        content.story, author, content.at, self.user):
                    events.append(StoryViewedEvent(content.story, author))
            case c.Poll() | c.Vote() | c.PollClose() | c.PollTally():
                await self.polls.apply(conv, author, content, group, new, receipts, events)
            case c.Sticker():
                await self.stickers.apply(conv, author, content, group, new, receipts, events)
            case _:
                pass  # SenderKeyDist inside a group message, or a type for later: ignore

    async def sync(self, *, follow: bool = False, on_messages: OnMessages | None = None) -> int:
        """Flush the outbox, then fetch and process everything pending.

        With ``follow`` keep receiving, reconnecting with jittered exponential
        backoff capped at :data:`RECONNECT_CAP` when the connection drops (emitting
        :class:`ConnectionChanged`).
        Returns the number of new messages processed.
        """
        total = 0
        backoff = RECONNECT_FIRST
        while not self._closed:
            error = ""
            self._set_state(CONNECTING)
            try:
                total += await self._sync_once(follow=follow, on_messages=on_messages)
                if not follow:
                    # A subscription lasts as long as its connection; the next sync needs a
                    # fresh one to get its own `synced`.
                    await self._drop_connection()
                    self._set_state(OFFLINE)
                    return total
            except (ConnectionLost, RelayUnreachable) as exc:
                if not follow:
                    self._set_state(OFFLINE, error=str(exc))
                    raise
                error = str(exc)
                if isinstance(exc, ConnectionLost):
                    self.relays.lost()  # another node of the relay first, if it has others
            except RelayError as exc:
                if not follow or exc.code != "unavailable":
                    self._set_state(OFFLINE, error=str(exc))
                    raise
                error = str(exc)  # the relay is shutting down: reconnect
                self.relays.lost()
            if self._closed:
                break
            if self._conn is not None:
                await self._conn.close()
            if self._online_once:
                backoff = RECONNECT_FIRST  # it worked for a while: start the backoff over
                self._online_once = False
            delay = backoff * random.uniform(RECONNECT_JITTER, 1.0)
            log.info("relay connection lost (%s); reconnecting in %.1f s", error, delay)
            self._set_state(OFFLINE, retry_in=delay, error=error)
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, RECONNECT_CAP)
        return total

    async def run(self) -> None:
        """Stay connected and receive until cancelled or the client is closed; meanwhile
        refresh wallet balances (every 5 minutes) and settle pending gifts."""
        wallet: asyncio.Task[None] = asyncio.ensure_future(self.wallet.run())
        try:
            await self.sync(follow=True)
        finally:
            wallet.cancel()

    _online_once = False
    _closed = False

    async def _sync_once(self, *, follow: bool, on_messages: OnMessages | None) -> int:
        conn = await self.connection()
        await self.flush_outbox()
        await conn.request(f.Subscribe)
        if follow:
            await self._watch(conn)
            self._online_once = True
            self._set_state(ONLINE)
        total = 0
        batch: list[f.Deliver | f.GroupDeliver] = []
        while True:
            frame = await conn.next_push()
            if frame is None:
                if batch:
                    total += await self._deliver_batch(batch, on_messages)
                raise ConnectionLost(conn.error or "connection to the relay was lost")
            if isinstance(frame, f.Deliver | f.GroupDeliver):
                batch.append(frame)
                if len(batch) < 256 and conn.has_push():
                    continue
            if batch:
                total += await self._deliver_batch(batch, on_messages)
                batch = []
                await self.flush_outbox()
            if isinstance(frame, f.PrekeysLow):
                await self.maintain_prekeys(conn, refill=True)
            elif isinstance(frame, f.Presence):
                self._presence(frame.user, frame.online)
            elif isinstance(frame, f.Synced) and not follow:
                return total

    def _presence(self, peer: bytes, online: bool) -> None:
        if self.presence.get(peer) != online:
            self.presence[peer] = online
            self._emit(PresenceChanged(peer, online))

    async def _watch(self, conn: RelayConnection) -> None:
        """Watch the presence of everyone we have a conversation with."""
        peers = [row.peer for row in await self.cache.conversations()
                 if len(row.peer) == 32][:1024]  # people, not groups
        state = await conn.request(f.Watch, users=peers)
        if isinstance(state, f.PresenceState):
            online = set(state.online)
            for peer in peers:
                self._presence(peer, peer in online)

    async def _deliver_batch(self, batch: list[f.Deliver | f.GroupDeliver],
                             on_messages: OnMessages | None) -> int:
        new = await self.receive(batch)
        if new and on_messages is not None:
            result = on_messages(new)
            if asyncio.iscoroutine(result):
                await result
        return len(new)

    async def unshown(self) -> list[MessageRow]:
        """Received messages no `inbox` has printed yet (see mark_shown)."""
        return await self.cache.unshown()

    async def mark_shown(self, rows: list[MessageRow]) -> None:
        """Record that ``rows`` were printed — only once they were written and flushed, so
        a crash in between prints them again (same id) rather than never."""
        if not rows:
            return
        async with self._crypto_lock:
            await self.cache.mark_shown(rows)
            await self.cache.commit()

    async def take_unshown(self) -> list[MessageRow]:
        """unshown() marked shown at once (at-most-once: for callers that only look)."""
        rows = await self.unshown()
        await self.mark_shown(rows)
        return rows

    async def mark_read(self, peer: str | bytes) -> int:
        """Mark a conversation read and send read receipts (unless turned off in settings);
        returns how many were unread. In a group, each author gets a receipt for theirs."""
        if isinstance(peer, bytes):
            user, contact = peer, await self.cache.contact(peer)
        else:
            contact = await self.resolve(peer)
            user = contact.user
        send_receipts = await self.setting("read_receipts")
        async with self._crypto_lock:
            rows = await self.cache.unread(user)
            if not rows:
                return 0
            ids = [msg_id for msg_id, _ in rows]
            try:
                await self.cache.mark_incoming_read(user, ids)
                if send_receipts and (contact is None or not contact.blocked):
                    if len(user) == 16:  # a group: receipts go 1:1 to each author
                        by_author: dict[bytes, list[bytes]] = {}
                        for msg_id, author in rows:
                            if author is not None:
                                by_author.setdefault(author, []).append(msg_id)
                        for author, mine in by_author.items():
                            await self._queue_receipt(author, c.READ, mine, group=user)
                    else:
                        await self._queue_receipt(user, c.READ, ids)
                await self.cache.commit()
            except BaseException:
                await self.cache.rollback()
                raise
        self._emit(ConversationChanged(user))
        if self.connection_state == ONLINE:
            self._spawn(self._flush_quietly())
        else:
            with contextlib.suppress(ConnectionLost, RelayUnreachable):
                await self.flush_outbox()
        return len(ids)

    # --- message actions (1:1 and groups alike) -----------------------------------------

    async def conversation_id(self, name: str) -> bytes:
        """A conversation by @handle or group name (or group id in hex)."""
        if not name.startswith("@"):
            group = await self.groups.find(name)
            if group is not None:
                return group
        return (await self.resolve(name)).user

    async def react(self, conv: bytes, target: bytes, emoji: str, *,
                    remove: bool = False) -> None:
        if await self.cache.message(conv, target) is None:
            raise TenchatError("no such message in this conversation")
        await self._act(conv, c.Reaction(target=target, emoji=emoji, remove=remove),
                        lambda: self.cache.react(conv, target, self.user, emoji, remove))

    async def edit(self, conv: bytes, target: bytes, text: str) -> None:
        if not text.strip():
            raise TenchatError("refusing to edit a message to nothing; delete it instead")
        mine = await self.cache.message(conv, target)
        if mine is None or not mine.outgoing or mine.deleted:
            raise TenchatError("you can only edit your own messages")
        await self._act(conv, c.Edit(target=target, text=text),
                        lambda: self.cache.edit_message(conv, target, None, False, text))

    async def delete(self, conv: bytes, target: bytes) -> None:
        mine = await self.cache.message(conv, target)
        if mine is None or not mine.outgoing:
            raise TenchatError("you can only delete your own messages for everyone")
        await self._act(conv, c.Delete(target=target),
                        lambda: self.cache.delete_message(conv, target, None, False))

    async def pin(self, conv: bytes, target: bytes, pinned: bool = True) -> None:
        if len(conv) == 16:
            state = await self.groups.state(conv)
            if state is None or not can_pin(state.roles.get(self.user)):
                raise PeerError("only group admins may pin messages")
        await self._act(conv, c.Pin(target=target, pinned=pinned),
                        lambda: self.cache.set_pinned(conv, target, pinned))

    async def set_timer(self, conv: bytes, seconds: int) -> None:
        """Disappearing messages: messages sent from now on vanish ``seconds`` after they
        arrive, on both sides (and the relay drops them if undelivered by then)."""
        if not 0 <= seconds <= c.MAX_TIMER:
            raise TenchatError(f"the timer is 0 (off) to {c.MAX_TIMER} seconds")
        await self._act(conv, c.Timer(seconds=seconds),
                        lambda: self.cache.set_timer(conv, seconds))

    async def _act(self, conv: bytes, content: c.Content,
                   local: Callable[[], Awaitable[object]], *, to: bytes | None = None) -> None:
        """Apply an action here and send it to the conversation as an encrypted message
        (or, with ``to``, 1:1 to that one member only)."""
        body = c.encode_content(content)
        async with self._crypto_lock:
            try:
                await local()
                if to is not None:
                    await self._queue_content(to, os.urandom(16), body)
                elif len(conv) == 16:
                    await self.groups.queue(conv, os.urandom(16), body)
                else:
                    contact = await self.cache.contact(conv)
                    if contact is not None and contact.blocked:
                        raise PeerError(f"@{contact.handle} is blocked")
                    await self._queue_content(conv, os.urandom(16), body)
                await self.cache.commit()
            except BaseException:
                await self.cache.rollback()
                raise
        target = getattr(content, "target", None) or getattr(content, "poll", None)
        self._emit(MessageChanged(conv, target) if target else ConversationChanged(conv))
        await self._send_soon()

    async def _send_soon(self) -> None:
        if self.connection_state == ONLINE:
            self._spawn(self._flush_quietly())
        else:
            await self.flush_outbox()

    # --- privacy settings ---------------------------------------------------------------

    async def setting(self, name: str) -> bool:
        if name not in PRIVACY_DEFAULTS:
            raise TenchatError(f"unknown setting {name!r}; one of {', '.join(PRIVACY_DEFAULTS)}")
        return _privacy(await self.cache.get_meta("privacy." + name), name)

    async def settings(self) -> dict[str, bool]:
        return {name: await self.setting(name) for name in PRIVACY_DEFAULTS}

    async def set_setting(self, name: str, value: bool) -> None:
        await self.setting(name)  # validates the name
        async with self._crypto_lock:
            await self.cache.set_meta("privacy." + name, int(value))
            await self.cache.commit()
        if name == "hide_presence" and self._conn is not None and not self._conn.closed.is_set():
            await self._conn.request(f.Privacy, hide_presence=value)

    async def send_typing(self, peer: bytes, active: bool) -> None:
        """Ephemeral and best effort: pushed to the peer's (or the group's members') live
        connections, never stored."""
        if self.connection_state != ONLINE:
            return
        if len(peer) == 16:
            if not await self.setting("typing"):
                return
            async with self._crypto_lock:
                envelope = await self.groups.typing_envelope(peer, active)
                await self.cache.commit()
            if envelope is not None:
                with contextlib.suppress(ConnectionLost, RelayError, RelayUnreachable):
                    conn = await self.connection()
                    await conn.request(f.GroupSend, group=peer, msg=os.urandom(16),
                                       body=envelope, eph=True)
            return
        plaintext = c.encode_content(c.Typing(active=active))
        now = now_ms()

        def encrypt(tx: Txn) -> bytes | None:  # in the cache's thread: one hand-off
            if not _privacy(tx.get_meta("privacy.typing"), "typing"):
                return b""  # typing indicators are turned off
            contact = tx.contact(peer)
            if contact is not None and contact.needs_acceptance:
                return b""  # nothing to a verified contact's new, unaccepted key
            sessions = tx.sessions(peer)
            if not sessions:
                return None
            row_id, state = sessions[0]
            session = Session.from_bytes(state)
            envelope = session.encrypt(pad(plaintext))
            # Committed (durably) before the envelope leaves: a sending chain that rolled
            # back after a crash would reuse this message key.
            tx.update_session(row_id, session.to_bytes(), now)
            return envelope

        async with self._crypto_lock:
            envelope = await self.cache.transact(encrypt)
            if envelope == b"":
                return
            if envelope is None:  # no session yet: start one (fetches a prekey bundle)
                envelope = await self._encrypt(peer, plaintext)
                await self.cache.commit()
        with contextlib.suppress(ConnectionLost, RelayError, RelayUnreachable):
            conn = await self.connection()
            await conn.request(f.Send, to=peer, msg=os.urandom(16), body=envelope, eph=True)

    # --- views for live UIs -------------------------------------------------------------

    async def conversations(self) -> list[Conversation]:
        """Pinned first, then by latest activity."""
        return [
            Conversation(row.peer, row.handle, row.last, row.unread, row.pinned, row.muted,
                         row.blocked, self.presence.get(row.peer), row.group_name, row.timer,
                         row.verified)
            for row in await self.cache.conversations()
        ]

    async def start_conversation(self, peer: str) -> Conversation:
        """Open (or find) the conversation with a handle, so it shows in the list."""
        contact = await self.resolve(peer)
        async with self._crypto_lock:
            await self.cache.ensure_conversation(contact.user)
            await self.cache.commit()
        if self.connection_state == ONLINE and contact.user not in self.presence:
            await self._rewatch()
        self._emit(ConversationChanged(contact.user))
        found = [conv for conv in await self.conversations() if conv.peer == contact.user]
        return found[0]

    async def page(self, peer: bytes, *, before: int | None = None,
                   limit: int = 50) -> list[MessageRow]:
        """Up to ``limit`` messages older than key ``before`` (default: the latest), oldest
        first. Disappearing messages whose time is up are deleted first."""
        await self.purge()
        return await self.cache.history(peer, limit, before=before)

    async def purge(self) -> None:
        """Delete expired disappearing messages now (they are also purged on every receive)."""
        events: list[Event] = []
        async with self._crypto_lock:
            await self.purge_expired(events)
            await self.cache.commit()
        for event in events:
            self._emit(event)

    async def around(self, peer: bytes, key: int, limit: int = 50) -> list[MessageRow]:
        """About ``limit`` messages centred on key ``key`` (a search hit in context)."""
        older = await self.cache.history(peer, limit // 2, before=key)
        return older + await self.cache.after(peer, key, limit - len(older))

    async def message_count(self, peer: bytes) -> int:
        return await self.cache.count(peer)

    async def search(self, query: str, *, peer: bytes | None = None,
                     limit: int = 50) -> list[SearchHit]:
        """Full-text search of the local cache (FTS5), newest first."""
        hits = await self.cache.search(query, peer, limit)
        names: dict[bytes, str | None] = {}
        out = []
        for message, snippet in hits:
            if message.peer not in names:
                contact = await self.cache.contact(message.peer)
                names[message.peer] = contact.handle if contact else None
            out.append(SearchHit(message, names[message.peer], snippet))
        return out

    async def set_muted(self, peer: bytes, muted: bool) -> None:
        await self._set_conversation_flag(peer, "muted", muted)

    async def set_pinned(self, peer: bytes, pinned: bool) -> None:
        await self._set_conversation_flag(peer, "pinned", pinned)

    async def _set_conversation_flag(self, peer: bytes, flag: str, value: bool) -> None:
        async with self._crypto_lock:
            await self.cache.set_conversation_flag(peer, flag, value)
            await self.cache.commit()
        self._emit(ConversationChanged(peer))
