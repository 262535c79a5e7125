"""Core events (client/events.py) as the JSON objects the daemon's ``subscribe`` streams.

One object per event with a ``type`` (daemon.EVENT_TYPES) and names a script can use:
handles and group names beside the hex ids. docs/rpc.md lists the fields.
"""

from __future__ import annotations

from typing import Any

from .cache import STATUS_NAMES
from .conv import is_group
from .events import (
    ConnectionChanged,
    ConversationChanged,
    DevicesChanged,
    Event,
    MessageAdded,
    MessageChanged,
    PresenceChanged,
    StatusChanged,
    StoryPosted,
    StoryViewed,
    TypingChanged,
)

__all__ = ["event_json", "conversation_name"]


async def conversation_name(client: Any, conv: bytes) -> str:
    """A group's name, or a person's handle (their fingerprint if unknown)."""
    if is_group(conv):
        state = await client.groups.state(conv)
        return str(state.name) if state is not None else conv.hex()
    return str(await client.display_name(conv))


async def event_json(client: Any, event: Event) -> dict[str, Any] | None:
    from .present import describe, message_json

    match event:
        case MessageAdded(message=msg):
            sender, group = await describe(client, msg)
            obj = message_json(msg, sender, own=msg.outgoing, group=group)
            return {"type": "message", "conversation": await conversation_name(client, msg.peer),
                    "conversation_id": msg.peer.hex(), "incoming": not msg.outgoing} | obj
        case StatusChanged(peer=peer, ids=ids, status=status):
            return {"type": "status", "conversation": await conversation_name(client, peer),
                    "ids": [i.hex() for i in ids], "status": STATUS_NAMES[status]}
        case TypingChanged(peer=peer, active=active, sender=sender):
            out = {"type": "typing", "conversation": await conversation_name(client, peer),
                   "active": active}
            if sender is not None:
                out["from"] = await client.display_name(sender)
            return out
        case PresenceChanged(peer=peer, online=online):
            return {"type": "presence", "user": await client.display_name(peer),
                    "online": online}
        case ConnectionChanged(state=state, retry_in=retry_in, error=error):
            return {"type": "connection", "state": state, "retry_in": retry_in,
                    "error": error}
        case MessageChanged(conv=conv, id=msg_id):
            return {"type": "message_changed",
                    "conversation": await conversation_name(client, conv), "id": msg_id.hex()}
        case ConversationChanged(peer=peer):
            return {"type": "conversation_changed",
                    "conversation": await conversation_name(client, peer)}
        case DevicesChanged(account=account, text=text):
            who = None if account == client.user else await client.display_name(account)
            return {"type": "devices_changed", "user": who, "text": text}
        case StoryPosted(story=story, author=author):
            return {"type": "story_posted", "story": story.hex(),
                    "author": await client.display_name(author)}
        case StoryViewed(story=story, viewer=viewer):
            return {"type": "story_viewed", "story": story.hex(),
                    "viewer": await client.display_name(viewer)}
    return None
