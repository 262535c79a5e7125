"""What another device of our own account tells this one (issue 16): a ``Sync`` copy of
content it sent into a conversation, applied here as ours — the message appears as sent,
a read receipt clears the unread messages it names, a reaction, edit, delete, pin or
timer is ours. Only from a device our own verified list names (client/devices.py)."""

from __future__ import annotations

import logging

import msgspec

from ..common import content as c
from .base import ClientBase, now_ms
from .cache import SENT, MessageRow
from .events import ConversationChanged, Event, MessageAdded, MessageChanged
from .rules import attachment_text

__all__ = ["DeviceSync"]

log = logging.getLogger("tenchat.client")


class DeviceSync(ClientBase):
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
            case _:  # delivered receipts are never synced; feature content: not yet
                pass
