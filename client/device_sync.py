"""What another device of our own account tells this one (issue 16): a ``Sync`` copy of
content it sent into a conversation, applied here as ours — the message appears as sent,
a read receipt clears the unread messages it names, a reaction, edit, delete, pin or
timer is ours. Only from a device our own verified list names (client/devices.py)."""

from __future__ import annotations

import contextlib
import logging
import os

import msgspec

from ..common import content as c
from ..common import frames as f
from .base import PRIVACY_DEFAULTS, ClientBase, now_ms
from .cache import SENT, MessageRow
from .connection import ConnectionLost, RelayError, RelayUnreachable
from .events import ONLINE, ConversationChanged, Event, MessageAdded, MessageChanged
from .rules import attachment_text

__all__ = ["DeviceSync"]

log = logging.getLogger("tenchat.client")


CONTACT_FLAGS = ("blocked", "verified", "added")
CONVERSATION_FLAGS = ("muted", "pinned")


class DeviceSync(ClientBase):
    async def tell_devices(self, key: str, value: bool, target: bytes = b"", *,
                           at: int = 0, data: bytes = b"") -> None:
        """Queue a setting change for our other devices, if we have any (in the open
        transaction; sent with the next flush)."""
        if len(await self.devices_of(self.user, fresh=False)) > 1:
            body = c.encode_content(c.State(key=key, value=value, target=target, at=at,
                                            data=data))
            await self.queue_content(self.user, os.urandom(16), body, typed=False)

    async def send_devices_soon(self) -> None:
        """Send what tell_devices queued (nothing to do on an account with one device)."""
        if len(await self.devices_of(self.user, fresh=False)) <= 1:
            return
        if self.connection_state == ONLINE:
            self._spawn(self._flush_quietly())
            return
        with contextlib.suppress(ConnectionLost, RelayUnreachable, RelayError):
            await self.flush_outbox()

    async def apply_state(self, state: c.State, events: list[Event]) -> None:
        """A setting another device of ours changed (in the open transaction)."""
        key, value, target = state.key, state.value, state.target
        if key in CONTACT_FLAGS and len(target) == 32:
            if await self.cache.contacts.get(target) is None:
                await self.name_sender(target, spoke=False)
            await self.cache.contacts.set_flag(target, key, value)
            if key == "blocked":  # the relay blocks per queue: this device's too
                await self.tell_relay_block(target, value)
            events.append(ConversationChanged(target))
        elif key in CONVERSATION_FLAGS and len(target) in (16, 32):
            await self.cache.conversations.set_flag(target, key, value)
            events.append(ConversationChanged(target))
        elif key in PRIVACY_DEFAULTS and not target:
            await self.cache.settings.set("privacy." + key, int(value))
            if key == "hide_presence" and self._conn is not None:
                with contextlib.suppress(ConnectionLost, RelayError):
                    await self._conn.request(f.Privacy, hide_presence=value)
        elif key in self._state_handlers:  # a feature's (client/service.py registers them)
            await self._state_handlers[key](state, events)
        else:
            log.warning("ignored a setting %r from one of our devices", key)

    async def tell_relay_block(self, user: bytes, blocked: bool) -> None:
        """Block (or unblock) every device of ``user`` on our queue: the relay blocks
        by sending identity, and each device of theirs is one."""
        with contextlib.suppress(ConnectionLost, RelayUnreachable, RelayError):
            conn = await self.connection()
            for device in await self.devices_of(user, fresh=False):
                await conn.request(f.Block, user=device, blocked=blocked)
    async def apply_sync(self, sync: c.Sync, events: list[Event]) -> None:
        """Apply what our other device sent into ``sync.conv`` (in the open transaction)."""
        try:
            inner = c.decode_content(sync.body)
        except msgspec.MsgspecError:
            log.warning("dropped an undecodable sync copy from one of our devices")
            return
        if await self.cache.contacts.get(sync.conv) is None:
            await self.name_sender(sync.conv, spoke=False)
        await self.apply_own(sync.conv, inner, events)

    async def apply_own(self, conv: bytes, inner: c.Content, events: list[Event]) -> None:
        """What another device of ours sent into ``conv`` (a peer, or a group whose post
        it was), applied as ours."""
        cache = self.cache
        match inner:
            case c.Text() | c.Attachment():
                text = (inner.text if isinstance(inner, c.Text)
                        else attachment_text(inner.ref, inner.caption))
                expires_at = inner.sent_at + inner.expires_in * 1000 if inner.expires_in else 0
                row = MessageRow(inner.id, conv, True, text, inner.sent_at, now_ms(), SENT,
                                 reply_to=inner.reply_to, expires_at=expires_at)
                if await cache.messages.add(row, shown=True):
                    if isinstance(inner, c.Attachment):
                        await cache.attachments.put(conv, inner.id,
                                                   msgspec.msgpack.encode(inner.ref))
                    events.append(MessageAdded((await cache.messages.get(conv, inner.id)) or row))
            case c.Receipt(kind=c.READ):
                where = inner.group if inner.group is not None else conv
                await cache.messages.mark_read(where, inner.ids)
                events.append(ConversationChanged(where))
            case c.Reaction():
                await cache.messages.react(conv, inner.target, self.user, inner.emoji, inner.remove)
                events.append(MessageChanged(conv, inner.target))
            case c.Edit():
                await cache.messages.edit(conv, inner.target, None, False, inner.text)
                events.append(MessageChanged(conv, inner.target))
            case c.Delete():
                await cache.messages.delete(conv, inner.target, None, False)
                events.append(MessageChanged(conv, inner.target))
            case c.Pin():
                await cache.messages.set_pinned(conv, inner.target, inner.pinned)
                events.append(MessageChanged(conv, inner.target))
            case c.Timer():
                await cache.conversations.set_timer(conv, inner.seconds)
                events.append(ConversationChanged(conv))
            case c.AudienceKey():  # our followers-only key, made on that device: ours too
                await self._own_audience_key(conv, inner)
            case c.StoryKey():  # likewise our close-friends story key, and who has it
                await cache.stories.put_key(self.user, inner.key_id, inner.key, now_ms())
                await cache.stories.set_close_friend_keys({conv: inner.key_id})
            case _:  # delivered receipts are never synced; other feature content: not yet
                pass

    async def _own_audience_key(self, follower: bytes, key: c.AudienceKey) -> None:
        """Our other device sent ``follower`` our audience key ``key``: keep the key and
        that the follower has it, as that device did. A key new here is a rotation
        there: the record starts again, as it did there (that device sends the new key to
        every follower, and each copy reaches us). Otherwise a follower removed there
        stays recorded here with the old key, and the next post from here rotates it."""
        audience = self.cache.audience
        members = await audience.members()
        if await audience.key(self.user, key.key_id) is None:
            members = {}
        await audience.put_key(self.user, key.key_id, key.key, now_ms())
        members[follower] = key.key_id
        await audience.set_members(members)
