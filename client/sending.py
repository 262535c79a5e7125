"""Sending: the public outbox API (queue_content, queue_message, send_queued, act) the
features use, texts and attachments, message actions, read receipts and typing.
The outbox's rules are client/outbox.py; the encryption client/session_crypto.py.

A little over 500 lines (~515): the outbox flush, the per-device copies and the sealed
path share one transaction and one send window, so they stay together; the message
actions (edit, delete, react, pin) are the next piece to move out if it grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from ..common import content as c
from ..common import frames as f
from ..common.crypto.errors import CryptoError
from ..common.crypto.media import MediaRef
from ..common.errors import ErrorCode, TenchatError
from ..common.groups import can_pin
from ..common.identity import (
    fingerprint,
)
from . import media
from .base import SEND_WINDOW, ClientBase, KeyChanged, _privacy, check_text, now_ms
from .cache import PENDING, SENT, MessageRow, Txn
from .connection import ConnectionLost, RelayError, RelayUnreachable
from .conv import is_group
from .errors import PeerError, QueuedOffline
from .events import (
    ONLINE,
    ConversationChanged,
    MessageAdded,
    MessageChanged,
    StatusChanged,
)
from .media import AttachmentError
from .outbox import GROUP, Flush, Item, Sealing
from .rules import (
    attachment_text,
)
from .session_crypto import decrypt_from, encrypt_new, encrypt_on

__all__ = ['Sending']

log = logging.getLogger("tenchat.client")


class Sending(ClientBase):
    """Everything that goes out through the outbox."""

    # --- sending ------------------------------------------------------------------------

    async def encrypt_for(self, peer: bytes, plaintext: bytes) -> bytes:
        """Encrypt for ``peer`` on the current session, or on a new one started from the
        peer's prekey bundle (fetched from the relay), padded (client/session_crypto.py).

        Saves the advanced session in the open transaction (``cache.transaction()``,
        which the caller holds: no other process starts a second session meanwhile)."""
        now = now_ms()
        envelope = await self.cache.call(lambda tx: encrypt_on(tx, peer, plaintext, now))
        if envelope is not None:
            return envelope
        bundle = await self._fetch_bundle(peer)
        return await self.cache.call(
            lambda tx: encrypt_new(tx, self.device, peer, bundle, plaintext, now))

    async def _fetch_bundle(self, peer: bytes) -> f.Bundle:
        conn = await self.connection()
        try:
            bundle = await conn.request(f.FetchBundle, user=peer)
        except RelayError as exc:
            if exc.code == ErrorCode.NOT_FOUND:
                raise PeerError("the peer has published no prekeys") from None
            raise
        assert isinstance(bundle, f.Bundle)
        if bundle.user != peer:
            raise PeerError("the relay returned a prekey bundle for another identity")
        return bundle

    async def decrypt_from(self, sender: bytes, envelope: bytes) -> bytes:
        """Decrypt a 1:1 envelope (client/session_crypto.py), in the open transaction;
        CryptoError if it can't be."""
        now = now_ms()
        return await self.cache.call(
            lambda tx: decrypt_from(tx, self.device, sender, envelope, now))

    async def send_text(self, peer: str, text: str, *, reply_to: bytes | None = None,
                        msg_id: bytes | None = None) -> MessageRow:
        """Encrypt, commit to the outbox, and send; returns once the relay has stored it.

        A caller-chosen ``msg_id`` makes a retry idempotent: a message this home already
        has under that id is not queued again, only sent if still pending (the relay
        keeps one copy per sender and id). The CLI retries a send through the daemon
        this way (docs/rpc.md, "A daemon that dies mid-send")."""
        check_text(text)
        contact = await self.resolve(peer)
        if contact.blocked:
            raise PeerError(f"@{contact.handle} is blocked; unblock them to send")
        return await self.send_text_to(contact.user, text, reply_to=reply_to, msg_id=msg_id)

    async def send_text_to(self, conv: bytes, text: str, *, reply_to: bytes | None = None,
                           msg_id: bytes | None = None) -> MessageRow:
        """As send_text, to a conversation id (a user id, or a group id)."""
        check_text(text)
        known = await self.cache.messages.get(conv, msg_id) if msg_id is not None else None
        message = known or await self.queue_text(conv, text, reply_to=reply_to, msg_id=msg_id)
        return await self.send_queued(conv, message)

    async def send_queued(self, conv: bytes, message: MessageRow) -> MessageRow:
        try:
            await self.flush_outbox()
        except (RelayUnreachable, ConnectionLost) as exc:
            raise QueuedOffline(
                f"{exc}; message {message.id.hex()} is queued as pending and goes out "
                "with the next tenchat command that reaches the relay"
            ) from None
        if message.id in self.unsent:
            raise self.unsent[message.id]
        return (await self.cache.messages.get(conv, message.id)) or message

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
        return await self.send_queued(conv, message)

    async def attachment(self, msg_id: str) -> tuple[bytes, bytes, MediaRef]:
        """(conversation, message id, MediaRef) of the attachment whose message id is
        ``msg_id`` or starts with it (at least 6 hex digits)."""
        text = msg_id.lower()
        if len(text) < 6 or any(ch not in "0123456789abcdef" for ch in text):
            raise TenchatError(f"{msg_id!r} is not a message id (hex, from `history --json`)")
        found = await self.cache.attachments.find(text)
        if not found:
            raise TenchatError(f"no message {msg_id!r} with an attachment")
        if len(found) > 1:
            raise TenchatError(f"{msg_id!r} matches several messages; give more digits")
        conv, mid, raw = found[0]
        return conv, mid, msgspec.msgpack.decode(raw, type=MediaRef)

    async def attachments(self, conv: bytes, ids: list[bytes]) -> dict[bytes, MediaRef]:
        raw = await self.cache.attachments.of(conv, ids)
        return {k: msgspec.msgpack.decode(v, type=MediaRef) for k, v in raw.items()}

    async def download(self, ref: MediaRef, out: Path) -> int:
        """Fetch, verify and decrypt an attachment into ``out``; nothing there on failure."""
        return await media.download(self.connection, ref, out)

    async def queue_text(self, peer: bytes, text: str, *, reply_to: bytes | None = None,
                         msg_id: bytes | None = None) -> MessageRow:
        """Encrypt a text message into the outbox (committed); nothing is sent yet.

        ``peer`` is a user id, or a group id (16 bytes) for a group message.
        """
        msg_id = msg_id or os.urandom(16)
        now = now_ms()
        timer = await self.cache.conversations.timer(peer)
        body = c.encode_content(c.Text(id=msg_id, text=text, sent_at=now, reply_to=reply_to,
                                       expires_in=timer))
        return await self.queue_message(peer, msg_id, now, timer, body, text,
                                         reply_to=reply_to)

    async def queue_attachment(self, peer: bytes, ref: MediaRef, caption: str = "", *,
                               reply_to: bytes | None = None) -> MessageRow:
        """As queue_text, for a file already uploaded (``ref`` from client.media.upload)."""
        msg_id = os.urandom(16)
        now = now_ms()
        timer = await self.cache.conversations.timer(peer)
        body = c.encode_content(c.Attachment(id=msg_id, ref=ref, sent_at=now, caption=caption,
                                             reply_to=reply_to, expires_in=timer))
        return await self.queue_message(peer, msg_id, now, timer, body,
                                         attachment_text(ref, caption), reply_to=reply_to,
                                         ref=ref)

    async def queue_message(self, peer: bytes, msg_id: bytes, now: int, timer: int,
                             body: bytes, text: str, *, reply_to: bytes | None,
                             ref: MediaRef | None = None,
                             also: Callable[[], Awaitable[object]] | None = None) -> MessageRow:
        expires_at = now + timer * 1000 if timer else 0
        async with self.cache.transaction():
            if is_group(peer):
                await self.groups.queue(peer, msg_id, body, expires_at=expires_at)
            else:
                await self.queue_content(peer, msg_id, body, expires_at=expires_at)
                # the user writes to them: they may reply sealed (client/sealed_sender.py)
                await self.sealed_sender.share_with(peer)
            message = MessageRow(msg_id, peer, True, text, now, now, PENDING,
                                 reply_to=reply_to, expires_at=expires_at)
            await self.cache.messages.add(message, shown=True)
            if ref is not None:
                await self.cache.attachments.put(peer, msg_id, msgspec.msgpack.encode(ref))
            if also is not None:  # e.g. the poll's row, in the same transaction
                await also()
        message = (await self.cache.messages.get(peer, msg_id)) or message
        self.emit(MessageAdded(message))
        return message

    async def queue_content(self, peer: bytes, msg_id: bytes, body: bytes, *,
                             expires_at: int = 0, typed: bool = True, sync: bool = True,
                             peer_too: bool = True) -> None:
        """Into the outbox, one copy per device (client/devices.py, ``routes``: every
        device of the account ``peer`` and, with ``sync``, a Sync copy for each other
        device of ours; ``peer_too=False``: only those): encrypted now if a session with
        the device exists, else sealed until the next flush can fetch its prekeys (so
        composing works offline, to anyone). KeyChanged (before anything is written) for
        a key the user has not accepted, as check_key_accepted says for ``typed``."""
        if peer_too:
            await self.check_key_accepted(peer, typed=typed)
        now = now_ms()
        for route in await self.routes(peer, msg_id, body, sync=sync, peer_too=peer_too):
            if route.relay_id != msg_id:  # a device's copy: which message it carries
                await self.cache.devices.add_copy(route.relay_id, peer, msg_id)
            if await self.cache.sessions.of(route.device):
                envelope = await self.encrypt_for(route.device, route.body)
                await self.cache.outbox.add(route.relay_id, route.device, envelope, now,
                                            expires_at=expires_at)
            else:
                await self.cache.outbox.defer(route.relay_id, route.device, route.body, now,
                                             expires_at=expires_at)

    async def queue_receipt(self, peer: bytes, kind: str, ids: list[bytes], *,
                             group: bytes | None = None, peer_too: bool = True) -> None:
        """A receipt is not typed: it goes to a contact whose handle has a pending key
        change (the key the user knows), never to the pending key itself. (Checked once:
        checked again as typed, it raised KeyChanged out of mark_read and rolled back a
        whole received batch.)"""
        if peer == self.user:
            return
        body = c.encode_content(c.Receipt(kind=kind, ids=ids, at=now_ms(), group=group))
        with contextlib.suppress(KeyChanged):  # no receipts to an unaccepted key
            # Our other devices learn what we read (not what we received: they got it too).
            await self.queue_content(peer, os.urandom(16), body, typed=False,
                                     sync=kind == c.READ, peer_too=peer_too)

    async def encrypt_pending(self) -> dict[bytes, TenchatError]:
        """Encrypt queued content that waited for a session, in queue order (the rules:
        client/outbox.py, Sealing).

        Returns the items that could not be encrypted yet (msg id -> why): they stay
        queued, and the other peers' messages go on.
        """
        sealing = Sealing()
        if not await self.cache.outbox.deferred():
            return sealing.failed
        async with self.cache.transaction():
            # Again under the lock: another process on this home may have encrypted
            # some of them meanwhile (they are in the outbox now, not deferred).
            for msg_id, peer, body in await self.cache.outbox.deferred():
                if not sealing.should_seal(msg_id, peer):
                    continue
                try:
                    envelope = await self.encrypt_for(peer, body)
                except (PeerError, RelayError, CryptoError) as exc:
                    # e.g. no prekeys, or a bundle not signed by the peer (a hostile
                    # relay): nothing is encrypted to a key we can't trust.
                    log.warning("can't start a session with %s: %s", fingerprint(peer), exc)
                    sealing.could_not_seal(msg_id, peer, exc)
                    continue
                await self.cache.outbox.encrypted(msg_id, envelope)
        return sealing.failed

    async def flush_outbox(self) -> int:
        """Send everything in the outbox until the relay has stored it; returns the count
        (the rules: client/outbox.py, Flush)."""
        async with self._flush_lock:  # one flush at a time; a second caller finds less to do
            self.unsent = await self.encrypt_pending()
            flush = Flush(await self.cache.outbox.items())
            if not flush.items:
                return 0
            conn = await self.connection()
            await self.sealed_sender.prepare(conn)  # a new access key before we share it
            sem = asyncio.Semaphore(SEND_WINDOW)
            copies = await self.cache.devices.copies([i.msg_id for i in flush.items])
            written = await self.cache.devices.written(list(copies.values()))

            async def one(item: Item) -> None:
                async with sem:
                    try:
                        if item.kind == GROUP:
                            await conn.request(f.GroupSend, group=item.peer, msg=item.msg_id,
                                               body=item.envelope, expires_at=item.expires_at)
                        else:
                            # Only what the user wrote makes the peer a contact for
                            # presence (review M3).
                            wrote = item.written or (item.msg_id in copies and copies[
                                item.msg_id].content_id in written)
                            if not ((sealed := await self.sealed_sender.seal_item(item, wrote))
                                    and await self.sealed_sender.send(item, sealed, wrote)):
                                # not sealed: no access key (or it was refused), turned off,
                                # or the first message the user writes to the peer
                                await conn.request(f.Send, to=item.peer, msg=item.msg_id,
                                                   body=item.envelope,
                                                   expires_at=item.expires_at, conv=wrote)
                    except RelayError as exc:
                        flush.answered(item, exc)
                        return
                    flush.answered(item)

            sent: dict[bytes, list[bytes]] = {}
            try:
                await asyncio.gather(*(one(item) for item in flush.items))
            finally:
                async with self.cache.transaction():
                    for item in flush.stored:
                        copy = copies.get(item.msg_id)
                        if copy is None:
                            if await self.cache.outbox.done(item.msg_id, item.peer):
                                sent.setdefault(item.peer, []).append(item.msg_id)
                            continue
                        # One device's copy: the message is sent once any copy is stored.
                        await self.cache.outbox.drop(item.msg_id)
                        await self.cache.devices.drop_copies([item.msg_id])
                        if await self.cache.messages.raise_status(copy.conv, [copy.content_id],
                                                                  SENT):
                            sent.setdefault(copy.conv, []).append(copy.content_id)
                    await self.sealed_sender.after_flush(flush.stored)
                    for item in flush.left_groups:
                        await self.cache.outbox.drop(item.msg_id)
                        await self.cache.groups.mark_left(item.peer)
                for peer, ids in sent.items():
                    self.emit(StatusChanged(peer, ids, SENT))
            if (error := flush.error()) is not None:
                raise error
            return len(flush.stored)

    async def compose(self, peer: bytes, text: str, *, reply_to: bytes | None = None
                      ) -> MessageRow:
        """Queue a message (pending) and send it in the background when online.

        Never fails for being offline: the outbox goes out on reconnect.
        """
        check_text(text)
        contact = await self.cache.contacts.get(peer)
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

    async def mark_read(self, peer: str | bytes) -> int:
        """Mark a conversation read and send read receipts (unless turned off in settings);
        returns how many were unread. In a group, each author gets a receipt for theirs."""
        if isinstance(peer, bytes):
            user, contact = peer, await self.cache.contacts.get(peer)
        else:
            contact = await self.resolve(peer)
            user = contact.user
        send_receipts = await self.setting("read_receipts")
        async with self.cache.transaction():
            rows = await self.cache.messages.unread(user)
            if not rows:
                return 0
            ids = [msg_id for msg_id, _ in rows]
            await self.cache.messages.mark_read(user, ids)
            # Without receipts to the peer, our other devices still learn what we read.
            tell = send_receipts and (contact is None or not contact.blocked)
            if is_group(user):  # a group: receipts go 1:1 to each author
                by_author: dict[bytes, list[bytes]] = {}
                for msg_id, author in rows:
                    if author is not None:
                        by_author.setdefault(author, []).append(msg_id)
                for author, mine in by_author.items():
                    await self.queue_receipt(author, c.READ, mine, group=user, peer_too=tell)
            else:
                await self.queue_receipt(user, c.READ, ids, peer_too=tell)
        self.emit(ConversationChanged(user))
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
        msg = await self.cache.messages.get(conv, target)
        if msg is None:
            raise TenchatError("no such message in this conversation")
        if msg.deleted and not remove:  # (the peers' clients drop it too: rules.py)
            raise TenchatError("this message was deleted; it takes no reactions")
        await self.act(conv, c.Reaction(target=target, emoji=emoji, remove=remove),
                        lambda: self.cache.messages.react(conv, target, self.user, emoji, remove))

    async def edit(self, conv: bytes, target: bytes, text: str) -> None:
        if not text.strip():
            raise TenchatError("refusing to edit a message to nothing; delete it instead")
        mine = await self.cache.messages.get(conv, target)
        if mine is None or not mine.outgoing or mine.deleted:
            raise TenchatError("you can only edit your own messages")
        await self.act(conv, c.Edit(target=target, text=text),
                        lambda: self.cache.messages.edit(conv, target, None, False, text))

    async def delete(self, conv: bytes, target: bytes) -> None:
        mine = await self.cache.messages.get(conv, target)
        if mine is None or not mine.outgoing:
            raise TenchatError("you can only delete your own messages for everyone")
        await self.act(conv, c.Delete(target=target),
                        lambda: self.cache.messages.delete(conv, target, None, False))

    async def pin(self, conv: bytes, target: bytes, pinned: bool = True) -> None:
        if is_group(conv):
            state = await self.groups.state(conv)
            if state is None or not can_pin(state.roles.get(self.user)):
                raise PeerError("only group admins may pin messages")
        await self.act(conv, c.Pin(target=target, pinned=pinned),
                        lambda: self.cache.messages.set_pinned(conv, target, pinned))

    async def set_timer(self, conv: bytes, seconds: int) -> None:
        """Disappearing messages: messages sent from now on vanish ``seconds`` after they
        arrive, on both sides (and the relay drops them if undelivered by then)."""
        if not 0 <= seconds <= c.MAX_TIMER:
            raise TenchatError(f"the timer is 0 (off) to {c.MAX_TIMER} seconds")
        await self.act(conv, c.Timer(seconds=seconds),
                        lambda: self.cache.conversations.set_timer(conv, seconds))

    async def act(self, conv: bytes, content: c.Content,
                   local: Callable[[], Awaitable[object]], *, to: bytes | None = None) -> None:
        """Apply an action here and send it to the conversation as an encrypted message
        (or, with ``to``, 1:1 to that one member only)."""
        body = c.encode_content(content)
        async with self.cache.transaction():
            await local()
            if to is not None:
                await self.queue_content(to, os.urandom(16), body)
            elif is_group(conv):
                await self.groups.queue(conv, os.urandom(16), body)
            else:
                contact = await self.cache.contacts.get(conv)
                if contact is not None and contact.blocked:
                    raise PeerError(f"@{contact.handle} is blocked")
                await self.queue_content(conv, os.urandom(16), body)
        target = getattr(content, "target", None) or getattr(content, "poll", None)
        self.emit(MessageChanged(conv, target) if target else ConversationChanged(conv))
        await self._send_soon()

    async def _send_soon(self) -> None:
        if self.connection_state == ONLINE:
            self._spawn(self._flush_quietly())
        else:
            await self.flush_outbox()

    async def send_typing(self, peer: bytes, active: bool) -> None:
        """Ephemeral and best effort: pushed to the peer's (or the group's members') live
        connections, never stored."""
        if self.connection_state != ONLINE:
            return
        if is_group(peer):
            if not await self.setting("typing"):
                return
            async with self.cache.transaction():
                envelope = await self.groups.typing_envelope(peer, active)
            if envelope is not None:
                with contextlib.suppress(ConnectionLost, RelayError, RelayUnreachable):
                    conn = await self.connection()
                    await conn.request(f.GroupSend, group=peer, msg=os.urandom(16),
                                       body=envelope, eph=True)
            return
        plaintext = c.encode_content(c.Typing(active=active))
        now = now_ms()
        devices = await self.devices_of(peer, fresh=False)  # a hint: the held list will do

        def encrypt(tx: Txn) -> list[tuple[bytes, bytes | None]] | None:  # one hand-off
            if not _privacy(tx.get_meta("privacy.typing"), "typing"):
                return None  # typing indicators are turned off
            contact = tx.contact(peer)
            if contact is not None and contact.needs_acceptance:
                return None  # nothing to a verified contact's new, unaccepted key
            return [(d, encrypt_on(tx, d, plaintext, now)) for d in devices]

        # Committed (durably) before the envelope leaves: a sending chain that rolled back
        # after a crash would reuse this message key.
        async with self.cache.transaction() as tx:
            opened = await tx.run(encrypt)
            if opened is None:
                return
            # No session yet with a device: start one (fetches a prekey bundle).
            envelopes = [(d, env if env is not None else await self.encrypt_for(d, plaintext))
                         for d, env in opened]
        with contextlib.suppress(ConnectionLost, RelayError, RelayUnreachable):
            conn = await self.connection()
            for device, envelope in envelopes:
                await conn.request(f.Send, to=device, msg=os.urandom(16), body=envelope,
                                   eph=True)
