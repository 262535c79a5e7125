"""Close friends: who can open your close-friends stories. Adding one sends them the
close-friends key end to end; removing one makes a new key that they never get —
``client.stories.add_close_friend`` / ``remove_close_friend``, as `tenchat close-friends`."""

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
from ..bindings import key_bindings
from ..keys import CLOSE_FRIEND_KEYS

__all__ = ["CloseFriendsScreen"]


class CloseFriendsScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close"),
                                            *key_bindings(CLOSE_FRIEND_KEYS)]

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.friends: list[tuple[bytes, str | None]] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="close-friends"):
            yield Static("Close friends", classes="title")
            yield OptionList(id="friends")
            yield Input(placeholder="@handle to add, Enter adds", id="friend-add")
            yield Static("a add · x remove (the key rotates) · Esc close", id="friends-hint",
                         classes="hint")

    async def on_mount(self) -> None:
        self.query_one("#friend-add", Input).display = False
        self.query_one("#friends", OptionList).focus()
        await self.reload()

    async def reload(self) -> None:
        self.friends = await self.client.stories.close_friends()
        friends = self.query_one("#friends", OptionList)
        friends.clear_options()
        for user, handle in self.friends:
            friends.add_option(Option(f"@{handle or '?'}", id=user.hex()))
        if not self.friends:
            friends.add_option(Option(Text("Nobody yet: a adds someone by handle.", "dim"),
                                      disabled=True))
        else:
            friends.highlighted = 0

    def _hint(self, text: str, bold: bool = False) -> None:
        self.query_one("#friends-hint", Static).update(Text(text, "bold" if bold else ""))

    def action_add_friend(self) -> None:
        field = self.query_one("#friend-add", Input)
        field.display = True
        field.focus()

    def action_close(self) -> None:
        field = self.query_one("#friend-add", Input)
        if field.display:
            field.display = False
            self.query_one("#friends", OptionList).focus()
            return
        self.dismiss(None)

    @on(Input.Submitted, "#friend-add")
    def _add(self, event: Input.Submitted) -> None:
        handle = event.value.strip().lstrip("@")
        if handle:
            self._change(self.client.stories.add_close_friend(handle),
                         f"@{handle} is a close friend")

    def action_remove_friend(self) -> None:
        index = self.query_one("#friends", OptionList).highlighted
        if index is None or index >= len(self.friends):
            return
        _user, handle = self.friends[index]
        if handle:
            self._change(self.client.stories.remove_close_friend(handle),
                         f"@{handle} removed; new close-friends stories use a new key")

    @work(group="close-friends", exclusive=True, exit_on_error=False)
    async def _change(self, request: Any, done: str) -> None:
        try:
            await request
        except (TenchatError, OSError) as exc:
            self._hint(str(exc), bold=True)
            return
        field = self.query_one("#friend-add", Input)
        field.value = ""
        field.display = False
        self._hint(done)
        await self.reload()
        self.query_one("#friends", OptionList).focus()
