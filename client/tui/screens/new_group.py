"""New group: a name and the members' handles; the group is created on the relay."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ....common.errors import ProtocolError, TenchatError
from .. import render

__all__ = ["NewGroupScreen", "parse_handles"]


def parse_handles(text: str) -> list[str]:
    """'@bob, carol  @dave' → ['bob', 'carol', 'dave']."""
    return [h.lstrip("@") for h in text.replace(",", " ").split() if h.lstrip("@")]


class NewGroupScreen(ModalScreen[bytes | None]):
    """Dismisses with the new group's id, or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="new-group"):
            yield Static("New group", classes="title")
            yield Input(placeholder="group name", id="name")
            yield Input(placeholder="@bob, @carol", id="members")
            yield Static("Enter creates · Tab next field · Esc cancels", id="error",
                         classes="hint")

    @on(Input.Submitted, "#name")
    def _name_submitted(self) -> None:
        self.query_one("#members", Input).focus()

    @on(Input.Submitted, "#members")
    def _members(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        if not name:
            self.query_one("#error", Static).update("[b]A group needs a name.[/b]")
            self.query_one("#name", Input).focus()
            return
        self._create(name, parse_handles(self.query_one("#members", Input).value))

    @work(exclusive=True)
    async def _create(self, name: str, handles: list[str]) -> None:
        self.query_one("#error", Static).update("creating…")
        try:
            group = await self.client.groups.create(name, handles)
        except (TenchatError, ProtocolError, OSError) as exc:
            self.query_one("#error", Static).update(render.plain(str(exc), "bold"))
            return
        self.dismiss(group)
