"""The receive rules, without I/O: what a peer's decrypted message-level content does to a
conversation (in the spirit of websockets' sans-I/O ``Protocol``).

``apply(facts, incoming) -> Effects``: the edge (``Client.apply_content``) first reads from
the cache the few :class:`Facts` the rules depend on (is this id known, the message an
edit names, our messages' statuses), calls :func:`apply`, then writes the
:class:`Effects` in the open transaction and emits their events after the commit. No
SQLite, socket or clock here: ``facts.now`` is the edge's clock. So the rules —
duplicates, out-of-order delivery, receipts before messages, edits and deletes of unknown
ids, who may pin or set a timer in a group, expiry — are tested by calling this
(tests/client/test_rules.py), hundreds of cases a second.

Feature content (polls, stickers, gifts, story keys…) is not decided here: the features
handle it (``Client.apply_content``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from ..common import content as c
from ..common.crypto.media import MediaRef
from ..common.groups import GroupState, can_pin
from .cache import DELIVERED, READ, MessageRow
from .cache import TargetRow as Target  # what the rules know of a message a content names
from .events import (
    ConversationChanged,
    Event,
    MessageAdded,
    MessageChanged,
    StatusChanged,
    TypingChanged,
)

__all__ = ["Incoming", "Facts", "Target", "Effects", "apply", "RULED",
           "AddMessage", "RaiseStatus", "RecordReceipts", "React", "EditText",
           "DeleteMessage", "SetPinned", "SetTimer", "Write", "mentions", "attachment_text"]

# The content types whose rules live here.
RULED = (c.Text, c.Attachment, c.Receipt, c.Typing, c.Reaction, c.Edit, c.Delete, c.Pin,
         c.Timer)


def mentions(text: str, handle: str) -> bool:
    """Does ``text`` mention ``@handle`` (case-insensitive, whole word)?"""
    return re.search(rf"(?<![\w@])@{re.escape(handle)}(?!\w)", text, re.IGNORECASE) is not None


def attachment_text(ref: MediaRef, caption: str) -> str:
    """What an attachment shows as a message's text: its caption, else "[file name]"."""
    return caption if caption.strip() else f"[{ref.name or 'file'}]"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One decrypted content: in conversation ``conv`` (a peer's user id, or a group id
    with ``group`` its verified state), written by ``author``."""

    conv: bytes
    author: bytes
    content: c.Content
    group: GroupState | None = None


@dataclass(frozen=True, slots=True)
class Facts:
    """What the cache knows that the rules for one content depend on (read first)."""

    me_handle: str  # our handle, for mentions
    now: int  # ms, the edge's clock
    known: bool = False  # Text/Attachment: a message with this id is already there
    target: Target | None = None  # Reaction/Edit/Delete/Pin: the message it names
    reacted: bool = False  # Reaction: this reactor already shows this emoji there
    statuses: dict[bytes, int] = field(default_factory=dict)  # Receipt: our messages'
    # Receipt for a group message: that group's members as we know them (None: no group)
    receipt_group: frozenset[bytes] | None = None


class AddMessage(NamedTuple):
    row: MessageRow
    ref: MediaRef | None = None  # an attachment's reference (its key: sealed at rest)


class RaiseStatus(NamedTuple):
    conv: bytes
    ids: list[bytes]
    status: int


class RecordReceipts(NamedTuple):
    conv: bytes
    ids: list[bytes]
    reader: bytes
    status: int


class React(NamedTuple):
    conv: bytes
    target: bytes
    reactor: bytes
    emoji: str
    remove: bool


class EditText(NamedTuple):
    conv: bytes
    target: bytes
    author: bytes
    in_group: bool
    text: str
    mention: bool


class DeleteMessage(NamedTuple):
    conv: bytes
    target: bytes
    author: bytes
    in_group: bool


class SetPinned(NamedTuple):
    conv: bytes
    target: bytes
    pinned: bool


class SetTimer(NamedTuple):
    conv: bytes
    seconds: int


Write = (AddMessage | RaiseStatus | RecordReceipts | React | EditText | DeleteMessage
         | SetPinned | SetTimer)


W = TypeVar("W")


@dataclass(slots=True)
class Effects(Generic[W]):
    """What one content does: rows to write, delivery receipts to queue, events to emit
    once committed, and the new messages (for ``inbox`` and the like). ``W``: the writes
    of these rules (a feature's rules have their own, e.g. client/poll_rules.py)."""

    writes: list[W] = field(default_factory=list)
    receipts: list[tuple[bytes, bytes | None, bytes]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)  # (to, group, message id) above
    new: list[MessageRow] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.writes or self.receipts or self.events)

    def deliver(self, stored: dict[bytes, MessageRow], new: list[MessageRow],
                receipts: dict[tuple[bytes, bytes | None], list[bytes]],
                events: list[Event]) -> None:
        """Hand the batch what was written: the new messages (as ``stored``, with their
        keys, where they were), the receipts to queue, the events to emit."""
        new.extend(stored.get(r.id, r) for r in self.new)
        for to, in_group, msg_id in self.receipts:
            receipts.setdefault((to, in_group), []).append(msg_id)
        events.extend(MessageAdded(stored.get(e.message.id, e.message))
                      if isinstance(e, MessageAdded) else e for e in self.events)


def _by_author(target: Target, author: bytes, in_group: bool) -> bool:
    """The named message was written by ``author`` (theirs to edit or delete)."""
    return not target.outgoing and (not in_group or target.sender == author)


def apply(facts: Facts, item: Incoming) -> Effects[Write]:
    """The effects of ``item`` (one of :data:`RULED`) given ``facts``."""
    conv, author, content, group = item.conv, item.author, item.content, item.group
    in_group = group is not None
    out: Effects[Write] = Effects()
    match content:
        case c.Text() | c.Attachment():
            if facts.known:
                return out  # a duplicate (the relay redelivers until acked)
            expires_at = facts.now + content.expires_in * 1000 if content.expires_in else 0
            if isinstance(content, c.Text):
                text, said, ref = content.text, content.text, None
            else:
                text = attachment_text(content.ref, content.caption)
                said, ref = content.caption, content.ref
            row = MessageRow(content.id, conv, False, text, content.sent_at, facts.now,
                             DELIVERED, sender=author if in_group else None,
                             reply_to=content.reply_to,
                             mention=mentions(said, facts.me_handle), expires_at=expires_at)
            out.writes.append(AddMessage(row, ref))
            out.new.append(row)
            out.receipts.append((author, conv if in_group else None, content.id))
            out.events.append(MessageAdded(row))
        case c.Receipt():
            status = READ if content.kind == c.READ else DELIVERED
            if content.group is not None:
                # A receipt for our group message counts only from a member of that group
                # (as we know it): anyone else could mark our messages read.
                if in_group or facts.receipt_group is None or author not in facts.receipt_group:
                    return out
                target_conv = content.group
                out.writes.append(RecordReceipts(target_conv, content.ids, author, status))
            else:
                target_conv = author
            # Only our own messages, only forwards (a late "delivered" never undoes "read");
            # ids we don't have (yet) change nothing.
            changed = [i for i in dict.fromkeys(content.ids)
                       if i in facts.statuses and facts.statuses[i] < status]
            if changed:
                out.writes.append(RaiseStatus(target_conv, changed, status))
            if changed or content.group is not None:
                out.events.append(StatusChanged(target_conv, changed or content.ids, status))
        case c.Typing():
            if not in_group:
                out.events.append(TypingChanged(author, content.active))
        case c.Reaction():
            target = facts.target
            if content.remove:
                if facts.reacted:
                    out.writes.append(React(conv, content.target, author, content.emoji, True))
                    out.events.append(MessageChanged(conv, content.target))
            elif target is not None and not target.deleted and not facts.reacted:
                # (a message deleted for everyone takes no new reactions, as no edit)
                out.writes.append(React(conv, content.target, author, content.emoji, False))
                out.events.append(MessageChanged(conv, content.target))
        case c.Edit():
            target = facts.target
            if target is not None and not target.deleted and _by_author(target, author,
                                                                        in_group):
                out.writes.append(EditText(conv, content.target, author, in_group,
                                           content.text,
                                           mentions(content.text, facts.me_handle)))
                out.events.append(MessageChanged(conv, content.target))
        case c.Delete():
            target = facts.target
            if target is not None and _by_author(target, author, in_group):
                out.writes.append(DeleteMessage(conv, content.target, author, in_group))
                out.events.append(MessageChanged(conv, content.target))
        case c.Pin():
            # In groups only admins pin; the relay can't check (it can't read this).
            allowed = group is None or can_pin(group.roles.get(author))
            if allowed and facts.target is not None and not facts.target.deleted:
                out.writes.append(SetPinned(conv, content.target, content.pinned))
                out.events.append(MessageChanged(conv, content.target))
        case c.Timer():
            if group is None or author in group.roles:
                out.writes.append(SetTimer(conv, content.seconds))
                out.events.append(ConversationChanged(conv))
    return out
