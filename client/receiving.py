"""Receiving: deliveries decrypted, applied (the rules: client/rules.py; feature content:
the handlers the features registered) and committed before the relay is acked; the
sync loop that keeps the connection and reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
from dataclasses import replace

import msgspec

from ..common import content as c
from ..common import frames as f
from ..common.crypto.errors import CryptoError
from ..common.errors import ErrorCode
from ..common.groups import GroupState
from ..common.identity import (
    fingerprint,
)
from .base import (
    RECONNECT_CAP,
    RECONNECT_FIRST,
    RECONNECT_JITTER,
    ClientBase,
    OnMessages,
    Opened,
    Receipts,
    now_ms,
)
from .cache import MessageRow, Txn
from .connection import ConnectionLost, RelayConnection, RelayError, RelayUnreachable
from .conv import is_user
from .events import (
    CONNECTING,
    OFFLINE,
    ONLINE,
    ConversationChanged,
    Event,
    MessageAdded,
    PresenceChanged,
    TypingChanged,
)
from .rules import (
    RULED,
    AddMessage,
    DeleteMessage,
    EditText,
    Effects,
    Facts,
    Incoming,
    RaiseStatus,
    React,
    RecordReceipts,
    SetPinned,
    SetTimer,
    Write,
    apply,
)
from .sealed_sender import is_sealed
from .session_crypto import decrypt_from, starts_session

__all__ = ['Receiving']

log = logging.getLogger("tenchat.client")


class Receiving(ClientBase):
    """Everything that comes in from the relay."""

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
        async with self.cache.transaction():
            await self.purge_expired(events)
            for item in items:
                if isinstance(item, f.GroupDeliver):
                    await self.groups.receive_one(item, new, receipts, events)
                else:
                    await self._receive_one(item, new, receipts, events)
            for hook in self._after_receive:  # e.g. tallies of our anonymous polls
                await hook()
            for (peer, group), ids in receipts.items():
                await self.queue_receipt(peer, c.DELIVERED, ids, group=group)
        # Committed: tell the UI now, so a connection lost while acking can't hide what
        # is already in the cache (the relay redelivers; duplicates are dropped).
        for event in events:
            self.emit(event)
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
            m.peer not in self.presence and is_user(m.peer) for m in new
        ):
            self._spawn(self._rewatch())  # a conversation that began with their message
        return new

    async def _receive_signals(self, items: list[f.Deliver]) -> None:
        """Ephemeral 1:1 deliveries (seq 0: never stored, never acked), which carry typing
        indicators only: the short path — decrypt, commit the session's advance, emit.
        Any other content sent this way is dropped (it would bypass the queue's order)."""
        opened = await self._open_signals(items)
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
                # A device's typing shows as its account's (held lists only: a hint).
                account = await self.cache.devices.account_of(sender) or sender
                if account != self.user:
                    self.emit(TypingChanged(account, content.active))
            else:
                log.warning("dropped a %s sent as an ephemeral message by %s",
                            type(content).__name__, fingerprint(sender))

    async def _open_signals(self, items: list[f.Deliver]) -> Opened:
        """Decrypt and commit, in one hand-off to the cache's thread: (sender, plaintext or
        why not) for each item not from a blocked peer. Without the fsync unless one may
        start a session: a receiving chain advanced by a typing indicator derives the
        same keys again if a power loss undoes it."""
        now = now_ms()

        def decrypt(tx: Txn) -> Opened:
            out: Opened = []
            for item in items:
                contact = tx.contact(item.sender)
                if contact is not None and contact.blocked:
                    continue
                opened: bytes | CryptoError
                try:
                    opened = decrypt_from(tx, self.device, item.sender, item.body, now)
                except CryptoError as exc:
                    opened = exc
                out.append((item.sender, opened))
            return out

        durable = any(starts_session(item.body) for item in items)
        async with self.cache.transaction(durable=durable) as tx:
            return await tx.run(decrypt)

    async def purge_expired(self, events: list[Event] | None = None) -> int:
        """Delete disappearing messages whose time is up (in the open transaction)."""
        gone = await self.cache.messages.purge_expired(now_ms())
        for conv in {conv for conv, _ in gone}:
            (events if events is not None else []).append(ConversationChanged(conv))
        return len(gone)

    async def _rewatch(self) -> None:
        """Send the watch list again, for a new conversation. Calls made while one is in
        flight share the one sent after it, so a burst of new conversations costs two
        watch lists, not one each (the relay allows ``watch_rate`` a minute)."""
        self._rewatch_due = True
        async with self._rewatch_lock:
            if not self._rewatch_due:  # a list read after this call began covered it
                return
            self._rewatch_due = False
            with contextlib.suppress(ConnectionLost, RelayError, RelayUnreachable):
                await self._watch(await self.connection())

    async def _receive_one(self, item: f.Deliver, new: list[MessageRow],
                           receipts: Receipts, events: list[Event]) -> None:
        device, body = item.sender, item.body  # the sending device: its session
        if is_sealed(item):  # the device is inside (client/sealed_sender.py)
            if not item.seq or (opened := self.sealed_sender.open(item)) is None:
                return
            # From here on as if the relay had named the device: the inner envelope must
            # decrypt on our session with it (its associated data binds its key).
            device, body = opened
        sender = await self.account_of(device)  # its account: the author
        if sender is None:
            log.warning("dropped a message from %s, a device its account removed",
                        fingerprint(device))
            return
        contact = await self.cache.contacts.get(sender)
        if contact is not None and contact.blocked:
            return  # a blocked sender's sealed messages too
        try:
            plaintext = await self.decrypt_from(device, body)
            content = c.decode_content(plaintext)
        except (CryptoError, msgspec.MsgspecError) as exc:
            # Never log the body; the sender and the kind of failure are enough.
            log.warning("dropped an undecryptable message from %s: %s",
                        fingerprint(device), type(exc).__name__)
            return
        if not item.seq and not isinstance(content, c.Typing):
            # Ephemeral (never queued, never acked): it carries typing indicators only.
            log.warning("dropped a %s sent as an ephemeral message by %s",
                        type(content).__name__, fingerprint(device))
            return
        if (sender == self.user) != isinstance(content, c.Sync | c.State) and not (
                sender == self.user and isinstance(content, c.SenderKeyDist)):
            # Sync copies and settings come from our own devices only, and they send
            # nothing else (but the sender keys of their group chains).
            log.warning("dropped a %s from %s", type(content).__name__, fingerprint(device))
            return
        if isinstance(content, c.Sync):
            await self.apply_sync(content, events)
            return
        if isinstance(content, c.State):
            await self.apply_state(content, events)
            return
        if contact is None and sender != self.user:
            await self.name_sender(sender)
        if isinstance(content, c.SenderKeyDist):
            await self.groups.receive_distribution(sender, content, new, receipts, events)
            return
        await self.apply_content(sender, sender, content, None, new, receipts, events)

    async def apply_content(self, conv: bytes, author: bytes, content: c.Content,
                            group: GroupState | None, new: list[MessageRow],
                            receipts: Receipts, events: list[Event]) -> None:
        """What a peer's decrypted content does to conversation ``conv`` (a peer's user id,
        or a group id with ``group`` its verified state). The relay can't tell these apart."""
        if isinstance(content, RULED):  # message-level rules: pure (client/rules.py)
            item = Incoming(conv, author, content, group)
            effects = apply(await self._facts(item), item)
            await self._write(effects)
            new.extend(effects.new)
            for to, in_conv, msg_id in effects.receipts:
                receipts.setdefault((to, in_conv), []).append(msg_id)
            events.extend(effects.events)
            return
        handler = self._content_handlers.get(type(content))
        if handler is not None:  # a feature's content (client/service.py registers them)
            await handler(conv, author, content, group, new, receipts, events)
        # else: SenderKeyDist inside a group message, or a type for later: ignored

    async def _facts(self, item: Incoming) -> Facts:
        """Read what the rules for ``item`` depend on (one hand-off to the cache's thread,
        plus the group's state for a group receipt)."""
        content, conv = item.content, item.conv
        receipt_group: frozenset[bytes] | None = None
        if isinstance(content, c.Receipt) and content.group is not None:
            state = await self.groups.state(content.group)
            receipt_group = frozenset(state.roles) if state is not None else None

        def read(tx: Txn) -> Facts:
            base = Facts(self.handle, self.clock(), receipt_group=receipt_group)
            match content:
                case c.Text() | c.Attachment():
                    return replace(base, known=tx.target(conv, content.id) is not None)
                case c.Receipt():
                    target_conv = content.group if content.group is not None else item.author
                    return replace(base, statuses=tx.outgoing_statuses(target_conv,
                                                                       content.ids))
                case c.Reaction():
                    return replace(base, target=tx.target(conv, content.target),
                                   reacted=tx.reacted(conv, content.target, item.author,
                                                      content.emoji))
                case c.Edit() | c.Delete() | c.Pin():
                    return replace(base, target=tx.target(conv, content.target))
            return base

        return await self.cache.call(read)

    async def _write(self, effects: Effects[Write]) -> None:
        """Write what the rules decided, in the open transaction. A stored message's row
        (with its key) replaces the one in the events and ``new``."""
        cache = self.cache
        stored: dict[bytes, MessageRow] = {}
        for w in effects.writes:
            match w:
                case AddMessage(row, ref):
                    if await cache.messages.add(row, shown=False):
                        if ref is not None:
                            await cache.attachments.put(row.peer, row.id,
                                                       msgspec.msgpack.encode(ref))
                        stored[row.id] = (await cache.messages.get(row.peer, row.id)) or row
                case RaiseStatus(conv, ids, status):
                    await cache.messages.raise_status(conv, ids, status)
                case RecordReceipts(conv, ids, reader, status):
                    await cache.messages.record_receipts(conv, ids, reader, status)
                case React(conv, target, reactor, emoji, remove):
                    await cache.messages.react(conv, target, reactor, emoji, remove)
                case EditText(conv, target, author, in_group, text, mention):
                    await cache.messages.edit(conv, target, author, in_group, text,
                                             mention=mention)
                case DeleteMessage(conv, target, author, in_group):
                    await cache.messages.delete(conv, target, author, in_group)
                case SetPinned(conv, target, pinned):
                    await cache.messages.set_pinned(conv, target, pinned)
                case SetTimer(conv, seconds):
                    await cache.conversations.set_timer(conv, seconds)
        if stored:
            effects.new[:] = [stored.get(r.id, r) for r in effects.new]
            effects.events[:] = [MessageAdded(stored.get(e.message.id, e.message))
                                 if isinstance(e, MessageAdded) else e
                                 for e in effects.events]

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
                if not follow or exc.code != ErrorCode.UNAVAILABLE:
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
        run what the features added (the wallet refreshes balances and settles gifts)."""
        _freeze_startup_objects()
        runners = [asyncio.ensure_future(runner()) for runner in self._runners]
        try:
            await self.sync(follow=True)
        finally:
            for task in runners:
                task.cancel()

    _online_once = False

    _closed = False

    async def _sync_once(self, *, follow: bool, on_messages: OnMessages | None) -> int:
        conn = await self.connection()
        await self.flush_outbox()
        if self.device_id != self.user:  # a linked device: groups joined before it was
            await self.groups.learn_missing()
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
                self._device_presence(frame.user, frame.online)
            elif isinstance(frame, f.StoryNew):
                for handler in self._on_story_new:  # a fetch: not in the way of messages
                    self._spawn(handler(frame))
            elif isinstance(frame, f.Synced) and not follow:
                return total

    def _presence(self, peer: bytes, online: bool) -> None:
        if self.presence.get(peer) != online:
            self.presence[peer] = online
            self.emit(PresenceChanged(peer, online))

    def _device_presence(self, device: bytes, online: bool) -> None:
        """The relay's presence is per device key: an account is online while any of the
        devices we watch for it is."""
        self.devices_online[device] = online
        account = self.watched_devices.get(device, device)
        devices = [d for d, a in self.watched_devices.items() if a == account] or [device]
        self._presence(account, any(self.devices_online.get(d, False) for d in devices))

    async def _watch(self, conn: RelayConnection) -> None:
        """Watch the presence of everyone we have a conversation with (every device of
        theirs we know of, up to the relay's 1,024 keys)."""
        peers = [row.peer for row in await self.cache.conversations.all()
                 if is_user(row.peer)][:1024]  # people, not groups
        watched: dict[bytes, bytes] = {}
        for peer in peers:
            for device in await self.devices_of(peer, fresh=False):
                if len(watched) < 1024:
                    watched[device] = peer
        self.watched_devices = watched
        state = await conn.request(f.Watch, users=list(watched))
        if isinstance(state, f.PresenceState):
            online = set(state.online)
            self.devices_online = {d: d in online for d in watched}
            for peer in peers:
                self._presence(peer, any(self.devices_online.get(d, False)
                                         for d, a in watched.items() if a == peer))

    async def _deliver_batch(self, batch: list[f.Deliver | f.GroupDeliver],
                             on_messages: OnMessages | None) -> int:
        new = await self.receive(batch)
        if new and on_messages is not None:
            result = on_messages(new)
            if asyncio.iscoroutine(result):
                await result
        return len(new)


def _freeze_startup_objects() -> None:
    """Once per process, when a client starts to stay running (the TUI, the daemon, a
    bot): move every object that exists then — modules, the client's own state — to the
    collector's permanent generation, as the relay does at start. A full collection
    otherwise walks all of them: 20–25 ms pauses every few hundred conversation-list
    reads (bench.notify, `conversations()` of 1,000: p99 26 ms, 4.5 ms with the collector
    off). Only cyclic garbage among those objects is then never freed; they live as long
    as the process anyway."""
    if not gc.get_freeze_count():
        gc.freeze()
