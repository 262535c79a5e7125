"""Every key binding of the TUI in one table: the bindings, the help screen, the
command palette and docs/tui.md all come from here.

Each binding has an id (the action name); ``Settings.keys`` maps an id to other
keys (Textual's keymap), e.g. ``search = "ctrl+f,f3"`` in HOME/config.toml.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KeySpec", "APP_KEYS", "CHAT_KEYS", "COMPOSER_KEYS", "LOG_KEYS", "LIST_KEYS",
           "ALL_KEYS", "display_key"]


@dataclass(frozen=True, slots=True)
class KeySpec:
    id: str  # binding id and action name; the key in Settings.keys
    key: str  # default key(s), comma separated
    description: str
    scope: str  # where it works, for the help screen
    palette: bool = True  # offered in the command palette
    show: bool = False  # shown in the footer


APP_KEYS = [
    KeySpec("help", "f1,question_mark", "Show the key bindings", "anywhere", show=True),
    KeySpec("command_palette", "ctrl+p", "Command palette: every action", "anywhere",
            palette=False, show=True),
    KeySpec("quit", "ctrl+q", "Quit", "anywhere", show=True),
]

CHAT_KEYS = [
    KeySpec("search", "ctrl+f", "Search messages (all or this conversation)", "chat",
            show=True),
    KeySpec("new_chat", "ctrl+n", "New chat by handle", "chat", show=True),
    KeySpec("contacts", "ctrl+o", "Contacts: add, block, verify", "chat", show=True),
    KeySpec("next_conversation", "alt+down,ctrl+pagedown", "Next conversation", "chat"),
    KeySpec("previous_conversation", "alt+up,ctrl+pageup", "Previous conversation", "chat"),
    KeySpec("toggle_mute", "alt+m", "Mute or unmute this conversation", "chat"),
    KeySpec("toggle_pin", "alt+p", "Pin or unpin this conversation", "chat"),
    KeySpec("toggle_block", "alt+b", "Block or unblock this peer", "chat"),
    KeySpec("verify", "alt+v", "Verify this peer's safety number", "chat"),
    KeySpec("toggle_dnd", "alt+d", "Do not disturb: no bell, no desktop notifications",
            "chat"),
    KeySpec("focus_composer", "ctrl+l", "Write a message (focus the composer)", "chat"),
    KeySpec("focus_list", "escape", "Back to the conversation list", "chat"),
]

COMPOSER_KEYS = [
    KeySpec("send", "enter", "Send the message", "composer", palette=False),
    KeySpec("newline", "ctrl+j,shift+enter,alt+enter", "New line in the message",
            "composer", palette=False),
]

LOG_KEYS = [
    KeySpec("scroll_older", "up,k", "Scroll up (older messages load as you go)", "messages",
            palette=False),
    KeySpec("scroll_newer", "down,j", "Scroll down", "messages", palette=False),
    KeySpec("page_older", "pageup", "Page up", "messages", palette=False),
    KeySpec("page_newer", "pagedown", "Page down", "messages", palette=False),
    KeySpec("oldest", "home,g", "Go to the oldest loaded message", "messages",
            palette=False),
    KeySpec("latest", "end,G", "Go to the latest message", "messages"),
]

LIST_KEYS = [
    KeySpec("open", "enter", "Open the highlighted conversation", "conversation list",
            palette=False),
    KeySpec("cursor", "up,down", "Move through conversations", "conversation list",
            palette=False),
]

ALL_KEYS = APP_KEYS + CHAT_KEYS + COMPOSER_KEYS + LOG_KEYS + LIST_KEYS

_NAMES = {"question_mark": "?", "pagedown": "PgDn", "pageup": "PgUp", "escape": "Esc"}


def display_key(keys: str) -> str:
    """'alt+down,ctrl+pagedown' → 'Alt+Down / Ctrl+PgDn'."""
    out = []
    for key in keys.split(","):
        parts = key.strip().split("+")
        shown = []
        for part in parts:
            name = _NAMES.get(part, part)
            if len(name) == 1:
                shown.append(name.upper() if len(parts) > 1 else name)
            else:
                shown.append(name[:1].upper() + name[1:])
        out.append("+".join(shown))
    return " / ".join(out)
