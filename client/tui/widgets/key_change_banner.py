"""A warning above the messages when the open peer is a handle's new identity key."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ....common.identity import fingerprint

__all__ = ["KeyChangeBanner"]


class KeyChangeBanner(Static):
    """Hidden until :meth:`warn`; the chat screen shows it for the open conversation."""

    def on_mount(self) -> None:
        self.display = False

    def warn(self, handle: str, held_back: bool, previous: bytes | None) -> None:
        """A pending key change: nothing is sent to the new key until it is accepted
        (marking it verified accepts it). ``held_back``: the old key was verified."""
        out = Text("⚠ ", "bold")
        out.append(f"@{handle}'s identity key changed", "bold")
        if previous is not None:
            out.append(f" (it was {fingerprint(previous)})")
        out.append(". ")
        if held_back:
            out.append("You had verified the old key: nothing is sent to this one until "
                       "you compare safety numbers (Alt+V) and mark it verified (m).", "bold")
        else:
            out.append("Nothing is sent to this key until you compare safety numbers "
                       "(Alt+V) and mark it verified (m), or run `tenchat contacts "
                       "accept-key`.")
        self.update(out)
        self.display = True

    def clear(self) -> None:
        self.update("")
        self.display = False
