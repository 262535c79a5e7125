"""The slash-command table: what ``/name`` runs, parsing, completion, dispatch.

No command lives here: slash.py registers the built-in ones, feature_slash.py the feature
screens'. The composer and the help screen read the table through this module, so they
never import the commands (which open screens: that would be an import cycle).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ...common.errors import TenchatError

__all__ = ["SlashCommand", "COMMANDS", "register", "parse", "unescape", "complete",
           "matching", "run"]

Handler = Callable[[Any, str], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class SlashCommand:
    name: str  # without the slash
    usage: str  # arguments, e.g. "<emoji>"; "" for none
    description: str
    handler: Handler


COMMANDS: dict[str, SlashCommand] = {}


def register(name: str, usage: str, description: str) -> Callable[[Handler], Handler]:
    """Add (or replace) ``/name``; use as a decorator on ``handler(screen, args)``."""

    def add(handler: Handler) -> Handler:
        COMMANDS[name] = SlashCommand(name, usage, description, handler)
        return handler

    return add


def parse(text: str) -> tuple[str, str] | None:
    """``(name, args)`` when ``text`` is a command; None for a message (``//`` included)."""
    if not text.startswith("/") or text.startswith("//"):
        return None
    match = re.match(r"/(\S*)\s*(.*)\Z", text, re.S)
    assert match is not None
    return match.group(1).lower(), match.group(2).strip()


def unescape(text: str) -> str:
    """The message to send for ``text``: ``//x`` → ``/x``."""
    return text[1:] if text.startswith("//") else text


def matching(prefix: str) -> list[SlashCommand]:
    """Commands whose name starts with ``prefix`` (without the slash), sorted."""
    return [COMMANDS[n] for n in sorted(COMMANDS) if n.startswith(prefix.lower())]


def complete(text: str) -> str | None:
    """Tab in the composer: ``/mu`` → ``/mute ``; the common part when several match;
    None when ``text`` is not a command name being typed."""
    if not text.startswith("/") or text.startswith("//") or any(c.isspace() for c in text):
        return None
    names = [c.name for c in matching(text[1:])]
    if not names:
        return None
    if len(names) == 1:
        return f"/{names[0]} "
    common = names[0]
    for name in names[1:]:
        while not name.startswith(common):
            common = common[:-1]
    return f"/{common}"


async def run(screen: Any, name: str, args: str) -> None:
    command = COMMANDS.get(name)
    if command is None:
        close = [c.name for c in matching(name[:2])] if name else []
        hint = f" (maybe /{', /'.join(close)})" if close else ""
        screen.notify(f"No command /{name}{hint}. /help lists them; // sends a slash.",
                      severity="warning")
        return
    try:
        result = command.handler(screen, args)
        if result is not None:
            await result
    except (TenchatError, OSError, ValueError) as exc:
        screen.notify(str(exc), severity="error", title=f"/{name}")
