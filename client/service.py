"""The client core: everything a tenchat user can do, for the CLI and the TUI alike.

A :class:`Client` owns one unlocked identity, its local cache and (lazily) one
relay connection. Outgoing messages are encrypted, written to the outbox and
committed before anything is sent; incoming ones are decrypted and committed
before the relay is told to delete them (DESIGN.md, principle 2).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ..common import content as c
from ..common import frames as f
from ..common.crypto.errors import CryptoError
from ..common.crypto.keys import IdentityKey, make_one_time_prekeys, make_signed_prekey
from ..common.crypto.safety import safety_number
from ..common.crypto.session import Session, envelope_ephemeral, envelope_kind
from ..common.errors import ProtocolError, TenchatError
from ..common.identity import fingerprint, handle_message, normalize_handle, verify_signature
from .cache import DELIVERED, PENDING, READ, Cache, ContactRow, MessageRow
from .connection import ConnectionLost, RelayConnection, RelayError, RelayUnreachable
from .keystore import Keystore, Secrets

__all__ = ["Client", "Incoming", "PeerError", "QueuedOffline", "now_ms"]

log = logging.getLogger("tenchat.client")

OTK_BATCH = 100  # one-time prekeys published at a time
OTK_LOW = 20  # refill when the relay holds fewer than this
SEND_WINDOW = 64  # outbox envelopes in flight at once


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class PeerError(TenchatError):
    """The peer can't be used: unknown handle, blocked, or a broken binding."""


class QueuedOffline(TenchatError):
    """The message is safe in the outbox, but the relay could not be reached to send it."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message just received and committed, as shown to the user."""

    message: MessageRow
    handle: str | None


OnMessages = Callable[[list[MessageRow]], Awaitable[None] | None]
OnEvent = Callable[[str, bytes, object], Awaitable[None] | None]


class Client:
    """One unlocked identity: keys, cache, relay connection."""

    def __init__(self, home: Path, relay_url: str, secrets: Secrets, cache: Cache) -> None:
        self.home = home
        self.relay_url = relay_url
        self.secrets = secrets
        self.identity = IdentityKey.from_seed(secrets.identity_seed)
        self.user = self.identity.public
        self.cache = cache
        self._conn: RelayConnection | None = None
        self._conn_lock = asyncio.Lock()
        self._crypto_lock = asyncio.Lock()  # one cache transaction at a time
        self.on_event: OnEvent | None = None  # typing and receipts, for live UIs
        self._refill: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------

    @classmethod
    async def create(cls, home: Path, relay_url: str, handle: str, passphrase: str) -> Client:
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
        conn = RelayConnection(relay_url, user=identity.public, sign=identity.sign)
        await conn.open()
        try:
            await conn.request(f.Register, handle=handle,
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
        await cache.commit()
        keystore.save(secrets, passphrase)
        return cls(home, relay_url, secrets, cache)

    @classmethod
    async def unlock(cls, home: Path, relay_url: str | None, passphrase: str) -> Client:
        secrets = Keystore.in_home(home).load(passphrase)
        cache = await Cache.open(home, secrets.storage_key)
        return cls(home, relay_url or secrets.relay, secrets, cache)

    async def close(self) -> None:
        if self._refill is not None:
            try:
                await asyncio.wait_for(self._refill, 10)
            except (TenchatError, TimeoutError) as exc:
                log.warning("prekey refill did not finish: %s", exc)
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        await self.cache.close()

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

    # --- connection ---------------------------------------------------------------------

    async def connection(self) -> RelayConnection:
        async with self._conn_lock:
            if self._conn is None or self._conn.closed.is_set():
                conn = RelayConnection(self.relay_url, user=self.user, sign=self.identity.sign)
                authed = await conn.open()
                self._conn = conn
                if authed.otk_count < OTK_LOW:
                    # In the background: the caller may hold the cache lock the refill needs.
                    self._refill = asyncio.create_task(self._refill_prekeys(conn))
            return self._conn

    async def _refill_prekeys(self, conn: RelayConnection) -> None:
        start = await self.cache.max_prekey_id("otk") + 1
        otks = make_one_time_prekeys(start, OTK_BATCH)
        now = now_ms()
        async with self._crypto_lock:
            for k in otks:
                await self.cache.put_prekey("otk", k.key_id, k.public, k.private, now)
            await self.cache.commit()
        await conn.request(f.PublishPrekeys, user=self.user,
                           otks=[f.OneTimePrekey(key_id=k.key_id, pub=k.public) for k in otks])

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

    async def _name_sender(self, user: bytes) -> None:
        """Learn the handle of a sender we have not seen before (best effort)."""
        if await self.cache.contact(user) is not None:
            return
        handle: str | None = None
        try:
            conn = await self.connection()
            info = await conn.request(f.Whois, user=user)
            if isinstance(info, f.HandleInfo) and verify_signature(
                user, handle_message(info.handle, user), info.sig
            ) and await self.cache.contact_by_handle(info.handle) is None:
                handle = info.handle
        except (RelayError, ConnectionLost, ProtocolError):
            pass
        await self.cache.remember_contact(user, handle, now_ms())

    async def contacts(self) -> list[ContactRow]:
        return await self.cache.contacts()

    async def add_contact(self, peer: str) -> ContactRow:
        contact = await self.resolve(peer)
        async with self._crypto_lock:
            await self.cache.set_contact_flag(contact.user, "added", True)
            await self.cache.commit()
        return (await self.cache.contact(contact.user)) or contact

    async def set_blocked(self, peer: str, blocked: bool) -> ContactRow:
        contact = await self.resolve(peer)
        async with self._crypto_lock:
            await self.cache.set_contact_flag(contact.user, "blocked", blocked)
            await self.cache.commit()
        return (await self.cache.contact(contact.user)) or contact

    async def safety_number(self, peer: str) -> tuple[ContactRow, str]:
        contact = await self.resolve(peer)
        return contact, safety_number(self.user, contact.user)

    async def display_name(self, user: bytes) -> str:
        contact = await self.cache.contact(user)
        if contact is not None and contact.handle:
            return contact.handle
        return fingerprint(user)

    # --- sending ------------------------------------------------------------------------

    async def _encrypt(self, peer: bytes, plaintext: bytes) -> bytes:
        """Encrypt for ``peer`` on the current session (starting one if needed).

        Saves the advanced session in the open transaction; the caller commits.
        """
        sessions = await self.cache.sessions(peer)
        if sessions:
            row_id, state = sessions[0]
            session = Session.from_bytes(state)
        else:
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
            session = Session.initiate(
                self.identity, peer, bundle.spk.key_id, bundle.spk.pub, bundle.spk.sig,
                bundle.otk.key_id if bundle.otk else None, bundle.otk.pub if bundle.otk else None,
            )
            row_id = None
        envelope = session.encrypt(plaintext)
        await self.cache.save_session(peer, row_id, session.to_bytes(), now_ms())
        return envelope

    async def send_text(self, peer: str, text: str) -> MessageRow:
        """Encrypt, commit to the outbox, and send; returns once the relay has stored it."""
        if not text.strip():
            raise TenchatError("refusing to send an empty message")
        if len(text) > c.MAX_TEXT:
            raise TenchatError(f"message too long ({len(text)} > {c.MAX_TEXT} characters)")
        contact = await self.resolve(peer)
        if contact.blocked:
            raise PeerError(f"@{contact.handle} is blocked; unblock them to send")
        message = await self.queue_text(contact.user, text)
        try:
            await self.flush_outbox()
        except (RelayUnreachable, ConnectionLost) as exc:
            raise QueuedOffline(
                f"{exc}; message {message.id.hex()} is queued as pending and goes out "
                "with the next tenchat command that reaches the relay"
            ) from None
        return (await self.cache.message(contact.user, message.id)) or message

    async def queue_text(self, peer: bytes, text: str) -> MessageRow:
        """Encrypt a text message into the outbox (committed); nothing is sent yet."""
        msg_id = os.urandom(16)
        now = now_ms()
        body = c.encode_content(c.Text(id=msg_id, text=text, sent_at=now))
        async with self._crypto_lock:
            try:
                envelope = await self._encrypt(peer, body)
                message = MessageRow(msg_id, peer, True, text, now, now, PENDING)
                await self.cache.add_message(message, shown=True)
                await self.cache.outbox_add(msg_id, peer, envelope, now)
                await self.cache.commit()
            except BaseException:
                await self.cache.rollback()
                raise
        return message

    async def _queue_receipt(self, peer: bytes, kind: str, ids: list[bytes]) -> None:
        body = c.encode_content(c.Receipt(kind=kind, ids=ids, at=now_ms()))
        envelope = await self._encrypt(peer, body)
        await self.cache.outbox_add(os.urandom(16), peer, envelope, now_ms())

    async def flush_outbox(self) -> int:
        """Send everything in the outbox until the relay has stored it; returns the count."""
        pending = await self.cache.outbox()
        if not pending:
            return 0
        conn = await self.connection()
        sem = asyncio.Semaphore(SEND_WINDOW)
        stored: list[tuple[bytes, bytes]] = []
        failures: list[BaseException] = []

        async def one(msg_id: bytes, peer: bytes, envelope: bytes) -> None:
            async with sem:
                try:
                    await conn.request(f.Send, to=peer, msg=msg_id, body=envelope)
                except RelayError as exc:
                    failures.append(exc)
                    return
                stored.append((msg_id, peer))

        try:
            await asyncio.gather(*(one(*item) for item in pending))
        finally:
            async with self._crypto_lock:
                for msg_id, peer in stored:
                    await self.cache.outbox_done(msg_id, peer)
                await self.cache.commit()
        if failures:
            raise failures[0]
        return len(stored)

    # --- receiving ----------------------------------------------------------------------

    async def _decrypt(self, sender: bytes, envelope: bytes) -> bytes:
        """Decrypt with the sender's sessions, or start one from a prekey envelope.

        A prekey envelope whose ephemeral key matches a session we hold belongs to
        that session: it is never used to start a second one, so a replayed first
        message (which X3DH alone can't tell apart without a one-time prekey) fails.
        """
        kind = envelope_kind(envelope)
        ephemeral = envelope_ephemeral(envelope) if kind == "prekey" else None
        sessions = [(row_id, Session.from_bytes(state))
                    for row_id, state in await self.cache.sessions(sender)]
        if ephemeral is not None:
            sessions = [(r, s) for r, s in sessions if s.ephemeral == ephemeral]
        for row_id, session in sessions:
            try:
                plaintext = session.decrypt(envelope)
            except CryptoError:
                continue
            await self.cache.save_session(sender, row_id, session.to_bytes(), now_ms())
            return plaintext
        if ephemeral is None or sessions:
            raise CryptoError("no session decrypts this message")
        spks = await self.cache.prekey_privates("spk")
        otks = await self.cache.prekey_privates("otk")
        session, plaintext = Session.respond(
            self.identity, sender, envelope, spks.get, otks.get
        )
        if session.used_otk_id is not None:
            await self.cache.delete_prekey("otk", session.used_otk_id)
        await self.cache.save_session(sender, None, session.to_bytes(), now_ms())
        return plaintext

    async def receive(self, items: list[f.Deliver]) -> list[MessageRow]:
        """Decrypt and commit a batch of deliveries; then ack them and queue receipts.

        Returns the new text messages (duplicates and undecryptable items are dropped).
        """
        new: list[MessageRow] = []
        receipts: dict[bytes, list[bytes]] = {}
        events: list[tuple[str, bytes, object]] = []
        async with self._crypto_lock:
            try:
                for item in items:
                    await self._receive_one(item, new, receipts, events)
                for peer, ids in receipts.items():
                    await self._queue_receipt(peer, c.DELIVERED, ids)
                await self.cache.commit()
            except BaseException:
                await self.cache.rollback()
                raise
        seqs = [item.seq for item in items if item.seq]
        if seqs:
            conn = await self.connection()
            await conn.request(f.Ack, seqs=seqs)
        for event in events:
            await self._emit(*event)
        return new

    async def _receive_one(self, item: f.Deliver, new: list[MessageRow],
                           receipts: dict[bytes, list[bytes]],
                           events: list[tuple[str, bytes, object]]) -> None:
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
        if contact is None:
            await self._name_sender(sender)
        match content:
            case c.Text():
                row = MessageRow(content.id, sender, False, content.text, content.sent_at,
                                 now_ms(), DELIVERED)
                if await self.cache.add_message(row, shown=False):
                    new.append(row)
                    receipts.setdefault(sender, []).append(content.id)
            case c.Receipt():
                status = READ if content.kind == c.READ else DELIVERED
                await self.cache.raise_status(sender, content.ids, status)
                events.append(("receipt", sender, content))
            case c.Typing():
                events.append(("typing", sender, content.active))

    async def _emit(self, kind: str, peer: bytes, value: object) -> None:
        if self.on_event is not None:
            result = self.on_event(kind, peer, value)
            if asyncio.iscoroutine(result):
                await result

    async def sync(self, *, follow: bool = False, on_messages: OnMessages | None = None) -> int:
        """Flush the outbox, then fetch and process everything pending.

        With ``follow`` keep receiving, reconnecting with backoff when the
        connection drops. Returns the number of new messages processed.
        """
        total = 0
        backoff = 0.2
        while True:
            try:
                total += await self._sync_once(follow=follow, on_messages=on_messages)
                if not follow:
                    return total
                backoff = 0.2
            except (ConnectionLost, RelayUnreachable):
                if not follow:
                    raise
            except RelayError as exc:
                if not follow or exc.code != "unavailable":
                    raise
                # The relay is shutting down: this connection is done, reconnect.
                if self._conn is not None:
                    await self._conn.close()
            # Reconnect with jittered exponential backoff, capped at 5 s.
            delay = backoff * (0.5 + random.random())
            log.info("relay connection lost; reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, 5.0)

    async def _sync_once(self, *, follow: bool, on_messages: OnMessages | None) -> int:
        conn = await self.connection()
        await self.flush_outbox()
        await conn.request(f.Subscribe)
        total = 0
        batch: list[f.Deliver] = []
        while True:
            frame = await conn.pushes.get()
            if frame is None:
                if batch:
                    total += await self._deliver_batch(batch, on_messages)
                raise ConnectionLost("connection to the relay was lost")
            if isinstance(frame, f.Deliver):
                batch.append(frame)
                if len(batch) < 256 and not conn.pushes.empty():
                    continue
            if batch:
                total += await self._deliver_batch(batch, on_messages)
                batch = []
                await self.flush_outbox()
            if isinstance(frame, f.PrekeysLow):
                await self._refill_prekeys(conn)
            elif isinstance(frame, f.Synced) and not follow:
                return total

    async def _deliver_batch(self, batch: list[f.Deliver], on_messages: OnMessages | None) -> int:
        new = await self.receive(batch)
        if new and on_messages is not None:
            result = on_messages(new)
            if asyncio.iscoroutine(result):
                await result
        return len(new)

    async def take_unshown(self) -> list[MessageRow]:
        """Received messages no `inbox` has printed yet; marks them printed."""
        async with self._crypto_lock:
            rows = await self.cache.take_unshown()
            await self.cache.commit()
        return rows

    async def mark_read(self, peer: str) -> int:
        """Mark a conversation read and send read receipts; returns how many were unread."""
        contact = await self.resolve(peer)
        async with self._crypto_lock:
            ids = await self.cache.unread_ids(contact.user)
            if not ids:
                return 0
            try:
                await self.cache.mark_incoming_read(contact.user, ids)
                if not contact.blocked:
                    await self._queue_receipt(contact.user, c.READ, ids)
                await self.cache.commit()
            except BaseException:
                await self.cache.rollback()
                raise
        await self.flush_outbox()
        return len(ids)

    async def history(self, peer: str, limit: int) -> tuple[ContactRow, list[MessageRow]]:
        contact = await self.resolve(peer)
        return contact, await self.cache.history(contact.user, limit)

    async def send_typing(self, peer: bytes, active: bool) -> None:
        """Ephemeral and best effort: the relay pushes it to live connections only."""
        async with self._crypto_lock:
            envelope = await self._encrypt(peer, c.encode_content(c.Typing(active=active)))
            await self.cache.commit()
        conn = await self.connection()
        await conn.request(f.Send, to=peer, msg=os.urandom(16), body=envelope, eph=True)
