"""Rules for the features' message-like content (a sticker, a gift), without I/O, in the
style of client/rules.py: the content becomes a chat message plus the feature's own
record, once (a redelivery is a duplicate), with a delivery receipt and an event.

``apply_sticker`` / ``apply_gift`` take :class:`MessageFacts` (is the id known, the
clock) and return ``Effects[FeatureWrite]``; the features' edges (StickerService.apply,
the wallet's receive_gift) write them. Tested by tests/client/test_message_rules.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from ..common import content as c
from .cache import DELIVERED, MessageRow
from .events import MessageAdded
from .rules import Effects, Incoming

__all__ = ["MessageFacts", "AddRow", "KeepSticker", "TrackGift", "FeatureWrite",
           "apply_sticker", "apply_gift", "sticker_text", "gift_text", "clean_name"]


@dataclass(frozen=True, slots=True)
class MessageFacts:
    now: int  # ms, the edge's clock
    known: bool = False  # a message with this id is already there


class AddRow(NamedTuple):
    """The chat message (written first; the record below only if it was new)."""

    row: MessageRow


class KeepSticker(NamedTuple):
    """The Sticker content (its pack key: sealed at rest) for the message."""

    conv: bytes
    msg_id: bytes
    content: bytes  # the Sticker, MessagePack


class TrackGift(NamedTuple):
    """A gift to settle from the chain (what it is worth is read there, never from here)."""

    chain_id: int
    tx_hash: bytes
    peer: bytes
    msg_id: bytes
    at: int


FeatureWrite = AddRow | KeepSticker | TrackGift


def clean_name(name: str) -> str:
    """A sender-chosen name, printable and on one line, at most 64 characters."""
    return re.sub(r"\s+", " ", "".join(ch for ch in name if ch.isprintable())).strip()[:64]


def sticker_text(name: str) -> str:
    """What a sticker shows as a message's text."""
    return f"[sticker: {name or '?'}]"


def gift_text(chain_id: int, tx_hash: bytes, status: str = "") -> str:
    """A gift's chat row: where to look, then (once settled) what the chain says."""
    return f"[gift] {status + ' · ' if status else ''}chain {chain_id} tx 0x{tx_hash.hex()}"


def _message(out: Effects[FeatureWrite], item: Incoming, row: MessageRow) -> None:
    out.writes.append(AddRow(row))
    out.new.append(row)
    out.receipts.append((item.author, item.conv if item.group is not None else None, row.id))
    out.events.append(MessageAdded(row))


def apply_sticker(facts: MessageFacts, item: Incoming) -> Effects[FeatureWrite]:
    """A peer's sticker message (1:1 or group). The image is fetched when first shown."""
    content = item.content
    assert isinstance(content, c.Sticker)
    out: Effects[FeatureWrite] = Effects()
    if facts.known:
        return out  # a duplicate
    expires_at = facts.now + content.expires_in * 1000 if content.expires_in else 0
    row = MessageRow(content.id, item.conv, False, sticker_text(clean_name(content.name)),
                     content.sent_at, facts.now, DELIVERED,
                     sender=item.author if item.group is not None else None,
                     reply_to=content.reply_to, expires_at=expires_at)
    _message(out, item, row)
    out.writes.append(KeepSticker(item.conv, content.id, c.encode_content(content)))
    return out


def apply_gift(facts: MessageFacts, item: Incoming) -> Effects[FeatureWrite]:
    """A peer's gift message: 1:1 only (a gift names one recipient's wallet)."""
    content = item.content
    assert isinstance(content, c.Gift)
    out: Effects[FeatureWrite] = Effects()
    if facts.known or item.group is not None:
        return out
    row = MessageRow(content.id, item.author, False, gift_text(content.chain_id,
                                                                content.tx_hash),
                     content.sent_at, facts.now, DELIVERED)
    _message(out, item, row)
    out.writes.append(TrackGift(content.chain_id, content.tx_hash, item.author, content.id,
                                facts.now))
    return out
