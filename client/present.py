"""How a message reads for a person or a script: the CLI's lines and JSON objects, which
the daemon's event stream (client/events_json.py) shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..common.textsafe import for_name, indent_lines
from .conv import is_group

__all__ = ["fmt_time", "message_json", "describe", "line_of"]


def fmt_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def message_json(msg: Any, sender: str, *, own: bool, group: str | None = None,
                 reactions: dict[str, int] | None = None,
                 attachment: Any = None) -> dict[str, Any]:
    from .cache import STATUS_NAMES

    out: dict[str, Any] = {"id": msg.id.hex(), "from": sender, "text": msg.text,
                           "sent_at": msg.sent_at}
    if own:
        out["status"] = STATUS_NAMES[msg.status]
    if group is not None:
        out["group"] = group
    if msg.reply_to:
        out["reply_to"] = msg.reply_to.hex()
    for flag in ("edited", "deleted", "pinned", "mention"):
        if getattr(msg, flag):
            out[flag] = True
    if msg.expires_at:
        out["expires_at"] = msg.expires_at
    if reactions:
        out["reactions"] = reactions
    if attachment is not None and not msg.deleted:
        out["attachment"] = {"name": attachment.name, "size": attachment.size,
                             "mime": attachment.mime}
    return out


async def describe(client: Any, msg: Any) -> tuple[str, str | None]:
    """(author handle, group name or None) of a message, for printing."""
    if is_group(msg.peer):
        info = await client.groups.state(msg.peer)
        group = info.name if info else msg.peer.hex()
        if msg.outgoing:
            return client.handle, group
        return (await client.display_name(msg.sender)) if msg.sender else "?", group
    return (client.handle if msg.outgoing else await client.display_name(msg.peer)), None


def line_of(msg: Any, sender: str, group: str | None, suffix: str = "",
            attachment: Any = None) -> str:
    """One message for the line-oriented output. Names are kept on one line and the
    text's continuation lines are indented (security review M6): no peer text can start
    a line that looks like another message (``[12:01] @bank: ...``)."""
    where = f"#{for_name(group)} " if group is not None else ""
    text = "(message deleted)" if msg.deleted else indent_lines(msg.text)
    if attachment is not None and not msg.deleted:
        text += f" [file {for_name(attachment.name or '?')}, {attachment.size} bytes, " \
                f"`tenchat download {msg.id.hex()[:12]}`]"
    extra = " (edited)" if msg.edited and not msg.deleted else ""
    return f"[{fmt_time(msg.sent_at)}] {where}@{for_name(sender)}: {text}{extra}{suffix}"
