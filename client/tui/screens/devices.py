"""This account's devices (issue 16): each with its fingerprint and which one this is;
approve a new device from the code its `tenchat device link` shows (after comparing its
fingerprint), remove one (after a yes) — as `tenchat device list|approve|remove`. No
device is the master: any of them does all of this."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ....common.errors import TenchatError
from ....common.identity import fingerprint
from ..bindings import key_bindings
from ..keys import DEVICE_KEYS
from .confirm import ConfirmScreen

__all__ = ["DevicesScreen"]

HINT = "a approve a new device (its link code) · x remove · Esc close"


class DevicesScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close"),
                                            *key_bindings(DEVICE_KEYS)]

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.devices: list[Any] = []  # DeviceRow, as listed

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="devices-dialog"):
            yield Static("Devices of this account", classes="title")
            yield OptionList(id="devices")
            yield Input(placeholder="the code `tenchat device link` shows, Enter reads it",
                        id="device-code")
            yield Static(HINT, id="devices-hint", classes="hint")

    async def on_mount(self) -> None:
        self.query_one("#device-code", Input).display = False
        self.query_one("#devices", OptionList).focus()
        await self.reload()

    async def reload(self) -> None:
        async with self.client.cache.transaction():  # a newer list is kept (verified)
            self.devices = await self.client.my_devices()
        listing = self.query_one("#devices", OptionList)
        listing.clear_options()
        for row in self.devices:
            line = Text.assemble(f"{row.name:<10} ", (fingerprint(row.key), "dim"))
            if row.this:
                line.append(" (this device)", "bold")
            listing.add_option(Option(line, id=row.key.hex()))
        listing.highlighted = 0 if self.devices else None

    def _hint(self, text: str, bold: bool = False) -> None:
        self.query_one("#devices-hint", Static).update(Text(text, "bold" if bold else ""))

    def action_close(self) -> None:
        field = self.query_one("#device-code", Input)
        if field.display:
            field.display = False
            self.query_one("#devices", OptionList).focus()
            return
        self.dismiss(None)

    def action_approve_device(self) -> None:
        field = self.query_one("#device-code", Input)
        field.display = True
        field.focus()

    @on(Input.Submitted, "#device-code")
    def _code(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._approve(event.value.strip())

    @work(group="devices", exclusive=True, exit_on_error=False)
    async def _approve(self, code: str) -> None:
        from ...linking import grant, read_request

        field = self.query_one("#device-code", Input)
        try:  # the code is used up here: a "no" below means a new `device link`
            link_code, request = await read_request(self.client, code)
        except (TenchatError, OSError) as exc:
            self._hint(str(exc), bold=True)
            return
        field.value = ""
        field.display = False
        question = (f"Device {request.name!r} asks to join this account. Its fingerprint: "
                    f"{fingerprint(request.device)}. Is that the one the new device shows?")
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            self._hint("not approved; the code is used up (start `device link` again)")
            return
        self._hint(f"approving {request.name!r}: waiting for it to join…")
        try:
            await grant(self.client, link_code, request)
        except (TenchatError, OSError) as exc:
            self._hint(str(exc), bold=True)
            return
        self._hint(f"{request.name!r} joined this account")
        await self.reload()
        self.query_one("#devices", OptionList).focus()

    def action_remove_device(self) -> None:
        index = self.query_one("#devices", OptionList).highlighted
        if index is None or index >= len(self.devices):
            return
        row = self.devices[index]
        if row.this:
            self._hint("this is the device you are on; remove it from another one", bold=True)
            return
        self._remove(row)

    @work(group="devices", exclusive=True, exit_on_error=False)
    async def _remove(self, row: Any) -> None:
        question = (f"Remove device {row.name!r} ({fingerprint(row.key)})? It gets nothing "
                    "sent from now on.")
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            return
        try:
            await self.client.remove_device(row.name)
        except (TenchatError, OSError) as exc:
            self._hint(str(exc), bold=True)
            return
        self._hint(f"{row.name!r} removed")
        await self.reload()
