"""A warning above the messages when a contact's handle now names another identity key."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

__all__ = ["KeyChangeBanner"]


class KeyChangeBanner(Static):
    """Hidden until :meth:`warn`; the chat screen shows it for the open conversation."""

    def on_mount(self) -> None:
        self.display = False

    def warn(self, handle: str, verified: bool, new_fingerprint: str) -> None:
        out = Text("⚠ ", "bold")
        out.append(f"@{handle}'s identity key changed", "bold")
        out.append(f" (the relay now names {new_fingerprint}). ")
        if verified:
            out.append("You had verified the old key. ", "bold")
        out.append("Messages still go to the key you know. Compare safety numbers "
                   "(Alt+V) before trusting a new one.")
        self.update(out)
        self.display = True

    def clear(self) -> None:
        self.update("")
        self.display = False
