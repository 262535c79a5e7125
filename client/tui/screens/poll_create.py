"""Create a poll in a conversation: the question, one option per line, one or several
choices, named or anonymous — ``client.polls.create``, as `tenchat poll create`."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Static, TextArea

from ....common.errors import TenchatError

__all__ = ["PollCreateScreen"]


class PollCreateScreen(ModalScreen[Any]):
    """Sends the poll on Ctrl+S and dismisses with its message row; None on Esc."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"),
                Binding("ctrl+s", "create", "Create the poll")]

    def __init__(self, client: Any, conversation: bytes, *, question: str = "",
                 options: list[str] | None = None) -> None:
        super().__init__()
        self.client = client
        self.conversation = conversation
        self.question = question
        self.options = options or []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="poll-create"):
            yield Static("New poll", classes="title")
            yield Input(self.question, placeholder="the question", id="poll-question")
            yield Static("Options, one per line (2 to 10):", classes="hint")
            yield TextArea("\n".join(self.options), id="poll-options-text", soft_wrap=True)
            yield Checkbox("several choices", id="poll-multiple", compact=True)
            yield Checkbox("anonymous (only counts are shown)", id="poll-anonymous",
                           compact=True)
            yield Static("Ctrl+S sends the poll · Tab next field · Esc cancels",
                         id="poll-hint", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#poll-question", Input).focus()

    def on_input_submitted(self) -> None:
        self.query_one("#poll-options-text", TextArea).focus()

    def action_create(self) -> None:
        self._create()

    @work(group="poll-create", exclusive=True, exit_on_error=False)
    async def _create(self) -> None:
        question = self.query_one("#poll-question", Input).value
        options = [line.strip() for line in
                   self.query_one("#poll-options-text", TextArea).text.splitlines()
                   if line.strip()]
        hint = self.query_one("#poll-hint", Static)
        try:
            row = await self.client.polls.create(
                self.conversation, question, options,
                multiple=self.query_one("#poll-multiple", Checkbox).value,
                anonymous=self.query_one("#poll-anonymous", Checkbox).value)
        except (TenchatError, OSError) as exc:
            hint.update(Text(str(exc), "bold"))
            return
        self.notify(f"Poll sent: {question.strip()}", markup=False)
        self.dismiss(row)
