"""Contacts: everyone added or talked with; add, block/unblock, verify, open a chat."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from ....common.errors import ProtocolError, TenchatError
from ....common.identity import fingerprint
from .. import render

__all__ = ["ContactsScreen"]


class ContactsScreen(ModalScreen[bytes | None]):
    """Dismisses with the peer to chat with, or None."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("a", "add", "Add"),
        Binding("b", "toggle_block", "Block/unblock"),
        Binding("v", "verify", "Verify"),
        Binding("m", "toggle_verified", "Mark verified / unmark"),
    ]

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.contacts: list[Any] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="contacts"):
            yield Static("Contacts", classes="title")
            yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
            yield Input(placeholder="@handle to add, Enter adds", id="add")
            yield Static("Enter chat · a add · b block/unblock · v safety number · "
                         "m mark verified · Esc close",
                         id="hint", classes="hint")

    async def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("handle", "fingerprint", "status")
        self.query_one("#add", Input).display = False
        await self.reload()
        table.focus()

    async def reload(self, select: bytes | None = None) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        self.contacts = await self.client.contacts()
        table.clear()
        for contact in self.contacts:
            flags = [f for f, on_ in (("blocked", contact.blocked),
                                      ("✔ verified", contact.verified),
                                      ("⚠ key changed", bool(contact.key_change)),
                                      ("added", contact.added)) if on_]
            mark = " ✔" if contact.verified else ""
            name = contact.handle or (f"{contact.claimed} (NEW KEY)" if contact.claimed else "?")
            table.add_row(render.plain(f"@{name}{mark}"), fingerprint(contact.user),
                          render.plain(", ".join(flags)), key=contact.user.hex())
        if select is not None:
            row = next((i for i, c in enumerate(self.contacts) if c.user == select), row)
        if self.contacts:
            table.move_cursor(row=min(row, len(self.contacts) - 1))

    def _selected(self) -> Any:
        table = self.query_one(DataTable)
        if not self.contacts or table.cursor_row >= len(self.contacts):
            return None
        return self.contacts[table.cursor_row]

    @on(DataTable.RowSelected)
    def _open(self) -> None:
        contact = self._selected()
        if contact is not None and not contact.blocked and contact.handle:
            self._start(contact.handle)

    @work(exclusive=True)
    async def _start(self, handle: str) -> None:
        conv = await self.client.start_conversation(handle)
        self.dismiss(conv.peer)

    def action_add(self) -> None:
        field = self.query_one("#add", Input)
        field.display = True
        field.focus()

    @on(Input.Submitted, "#add")
    async def _add(self, event: Input.Submitted) -> None:
        hint = self.query_one("#hint", Static)
        try:
            contact = await self.client.add_contact(event.value.strip())
        except (TenchatError, ProtocolError, OSError) as exc:
            hint.update(render.plain(str(exc), "bold"))
            return
        event.input.value = ""
        event.input.display = False
        hint.update(render.plain(f"added @{contact.handle}"))
        await self.reload(select=contact.user)
        self.query_one(DataTable).focus()

    async def action_toggle_block(self) -> None:
        contact = self._selected()
        if contact is None or not contact.handle:
            return
        updated = await self.client.set_blocked(contact.handle, not contact.blocked)
        self.query_one("#hint", Static).update(render.plain(
            f"@{contact.handle} {'blocked' if updated.blocked else 'unblocked'}"))
        await self.reload(select=contact.user)

    def action_verify(self) -> None:
        contact = self._selected()
        if contact is not None and contact.handle:
            from .verify import VerifyScreen

            def reload(_: object) -> None:
                self.run_worker(self.reload(select=contact.user))

            self.app.push_screen(VerifyScreen(self.client, contact.handle), reload)

    async def action_toggle_verified(self) -> None:
        contact = self._selected()
        if contact is None or not contact.handle:
            return
        try:
            updated = await self.client.set_verified(contact.handle, not contact.verified)
        except (TenchatError, OSError) as exc:
            self.notify(str(exc), severity="error")
            return
        self.query_one("#hint", Static).update(
            f"@{contact.handle} {'marked verified ✔' if updated.verified else 'unmarked'}")
        await self.reload(select=contact.user)
