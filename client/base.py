"""What the parts of the client core share: its constants, small types and helpers, and
:class:`ClientBase` — the state every part reads (keys, cache, connection, listeners) and
the hooks through which features plug in (the core imports none of them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from ..common import content as c
from ..common import frames as f
from ..common.clock import clock_offset
from ..common.crypto.errors import CryptoError
from ..common.crypto.keys import (
    IdentityKey,
)
from ..common.crypto.prekeys import (
    PrekeyPolicy,
)
from ..common.errors import TenchatError
from ..common.groups import GroupState
from ..common.identity import (
    fingerprint,
)
from .cache import Cache, ContactRow, LastMessage, MessageRow
from .connection import RelayConnection, RelayList
from .conv import is_group
from .errors import PeerError
from .events import (
    Event,
)
from .keystore import Secrets

if TYPE_CHECKING:
    from .addressing import Route
    from .sealed_sender import SealedSender

__all__ = ["ClientBase", "GroupChannel", "ContentHandler", "StateHandler", "Conversation",
           "SearchHit", "KeyChanged", "Receipts", "now_ms", "clock_from_environ", "check_text"]

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


class Conversation(NamedTuple):
    """A row of the conversation list (a tuple: the list builds 1,000 of them at a time,
    and a frozen dataclass costs ~5 µs each, half the list's time — bench.notify)."""

    peer: bytes
    handle: str | None
    last: LastMessage | None  # the latest message, for the preview
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
        return is_group(self.peer)

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
    # sealed sender (client/sealed_sender.py): hide who we are from the relay when we
    # hold the recipient's access key; and take sealed messages from anyone, not only
    # from those we sent our profile key
    "sealed_sender": True,
    "sealed_from_anyone": False,
}


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


Listener = Callable[[Event], None]


class GroupChannel(Protocol):
    """What the core asks of groups (client/groups.py, GroupService): a group id is a
    conversation like a peer's user id, so sending, receiving and typing reach it."""

    async def queue(self, group: bytes, msg_id: bytes, body: bytes, *,
                    expires_at: int = 0) -> None: ...

    async def receive_one(self, item: f.GroupDeliver, new: list[MessageRow],
                          receipts: Receipts, events: list[Event]) -> None: ...

    async def receive_distribution(self, sender: bytes, content: c.SenderKeyDist,
                                   new: list[MessageRow], receipts: Receipts,
                                   events: list[Event]) -> None: ...

    async def state(self, group: bytes) -> GroupState | None: ...

    async def find(self, name: str) -> bytes | None: ...

    async def typing_envelope(self, group: bytes, active: bool) -> bytes | None: ...

    async def rotate_with(self, user: bytes) -> int: ...

    async def learn_missing(self) -> int: ...


# A feature's handler for a content type it owns (polls, stickers, gifts, story keys…):
# (conversation, author, content, the group's verified state or None, and what the batch
# collects: new messages, delivery receipts to queue, events to emit after the commit).
ContentHandler = Callable[
    [bytes, bytes, c.Content, GroupState | None, list[MessageRow], Receipts, list[Event]],
    Awaitable[None]]

# A feature's handler for a ``state`` content from another device of ours whose key it
# owns (a follower removed, a close friend, a sticker pack): (the state, the events to
# emit after the commit); called in the open receive transaction.
StateHandler = Callable[[c.State, list[Event]], Awaitable[None]]


class ClientBase:
    """The state the parts of the core share, and the hooks features register with
    (``register_content``, ``register_state``, ``after_receive``, ``add_runner``): the
    core calls them and never imports a feature."""

    home: Path
    clock: Callable[[], int]  # ms; stories expire by it (tests pass one that runs ahead)
    relay_url: str  # one URL, or several of one relay: "ws://a,ws://b"
    relays: RelayList  # which of them to dial (failover)
    secrets: Secrets
    identity: IdentityKey
    user: bytes
    cache: Cache
    groups: GroupChannel
    sealed_sender: SealedSender
    connection_state: str
    unsent: dict[bytes, TenchatError]  # outbox items the last flush couldn't send
    presence: dict[bytes, bool]  # watched peers; absent = unknown
    watched_devices: dict[bytes, bytes]  # presence: device -> account (client/receiving.py)
    devices_online: dict[bytes, bool]  # presence per watched device
    _rewatch_lock: asyncio.Lock  # one watch list in flight (Receiving._rewatch)
    _rewatch_due: bool  # a new conversation since the last watch list was read
    _conn: RelayConnection | None
    _conn_lock: asyncio.Lock
    _refill: asyncio.Task[None] | None
    _listeners: list[Listener]
    _flush_lock: asyncio.Lock
    _background: set[asyncio.Task[object]]
    _content_handlers: dict[type[c.Content], ContentHandler]
    _state_handlers: dict[str, StateHandler]
    _after_receive: list[Callable[[], Awaitable[object]]]
    _runners: list[Callable[[], Awaitable[object]]]
    _on_story_new: list[Callable[[f.StoryNew], Awaitable[object]]]

    def register_content(self, types: tuple[type[c.Content], ...],
                         handler: ContentHandler) -> None:
        """Hand the core a feature's handler for these content types (one owner each)."""
        for kind in types:
            assert kind not in self._content_handlers, f"{kind.__name__} has a handler"
            self._content_handlers[kind] = handler

    def register_state(self, keys: tuple[str, ...], handler: StateHandler) -> None:
        """Hand the core a feature's handler for these ``state`` keys (one owner each)."""
        for key in keys:
            assert key not in self._state_handlers, f"state {key!r} has a handler"
            self._state_handlers[key] = handler

    def after_receive(self, hook: Callable[[], Awaitable[object]]) -> None:
        """Run ``hook()`` at the end of each received batch, in its transaction."""
        self._after_receive.append(hook)

    def on_story_new(self, handler: Callable[[f.StoryNew], Awaitable[object]]) -> None:
        """Run ``handler(push)`` (in the background) for each ``story_new`` push."""
        self._on_story_new.append(handler)

    def add_runner(self, runner: Callable[[], Awaitable[object]]) -> None:
        """Run ``runner()`` alongside ``Client.run`` (cancelled when it ends)."""
        self._runners.append(runner)

    if TYPE_CHECKING:  # defined by the parts (client/core.py lists them)
        device: IdentityKey  # this device's key (client/devices.py)
        @property
        def device_id(self) -> bytes: ...
        async def devices_of(self, account: bytes, *, fresh: bool = True) -> list[bytes]: ...
        async def routes(self, peer: bytes, msg_id: bytes, body: bytes, *, sync: bool = True,
                         peer_too: bool = True) -> list[Route]: ...
        async def account_of(self, device: bytes) -> bytes | None: ...
        async def apply_sync(self, sync: c.Sync, events: list[Event]) -> None: ...
        async def apply_state(self, state: c.State, events: list[Event]) -> None: ...
        async def tell_devices(self, key: str, value: bool, target: bytes = b"", *,
                               at: int = 0, data: bytes = b"") -> None: ...
        async def tell_relay_block(self, user: bytes, blocked: bool) -> None: ...
        async def send_devices_soon(self) -> None: ...
        async def queue_content(self, peer: bytes, msg_id: bytes, body: bytes, *,
                                expires_at: int = 0, typed: bool = True, sync: bool = True,
                                peer_too: bool = True) -> None: ...
        async def apply_own(self, conv: bytes, inner: c.Content, events: list[Event]
                            ) -> None: ...
        @property
        def handle(self) -> str: ...
        async def connection(self) -> RelayConnection: ...
        def emit(self, event: Event) -> None: ...
        def _spawn(self, coro: Awaitable[object]) -> None: ...
        def _set_state(self, state: str, *, retry_in: float | None = None,
                       error: str = "") -> None: ...
        async def _drop_connection(self) -> None: ...
        async def maintain_prekeys(self, conn: RelayConnection, *, refill: bool,
                                   now: int | None = None) -> None: ...
        async def _spk_due(self, now: int) -> bool: ...
        @property
        def prekey_policy(self) -> PrekeyPolicy: ...
        async def resolve(self, peer: str) -> ContactRow: ...
        async def name_sender(self, user: bytes, *, spoke: bool = True) -> None: ...
        async def check_key_accepted(self, peer: bytes, *, typed: bool = True) -> None: ...
        async def setting(self, name: str) -> bool: ...
        async def flush_outbox(self) -> int: ...
        async def _flush_quietly(self) -> None: ...
        async def queue_receipt(self, peer: bytes, kind: str, ids: list[bytes], *,
                                group: bytes | None = None) -> None: ...
        async def encrypt_for(self, peer: bytes, plaintext: bytes) -> bytes: ...
        async def decrypt_from(self, sender: bytes, envelope: bytes) -> bytes: ...
        async def purge_expired(self, events: list[Event] | None = None) -> int: ...
        async def _rewatch(self) -> None: ...
        async def _watch(self, conn: RelayConnection) -> None: ...
        async def conversations(self, limit: int | None = None) -> list[Conversation]: ...
