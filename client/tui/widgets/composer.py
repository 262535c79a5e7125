"""The composer: Enter sends; Ctrl+J (or Shift+Enter / Alt+Enter) starts a new line;
multi-line paste goes in as it is. Posts typing activity for the typing indicator."""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

__all__ = ["Composer"]


class Composer(TextArea):
    """A message editor that grows up to a few lines."""

    BINDINGS = [
        Binding("enter", "send", "Send", id="send", show=False, priority=True),
        Binding("ctrl+j,shift+enter,alt+enter", "newline", "New line", id="newline",
                show=False, priority=True),
    ]

    class Submitted(Message):
        """The user pressed Enter with some text."""

        def __init__(self, composer: Composer, text: str) -> None:
            super().__init__()
            self.composer = composer
            self.text = text

    class Typing(Message):
        """The text changed because the user typed (not because it was cleared)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, soft_wrap=True, show_line_numbers=False,
                         tab_behavior="focus", compact=True)
        self.placeholder = "Write a message — Enter sends, Ctrl+J new line"

    def action_send(self) -> None:
        text = self.text.strip("\n")
        if text.strip():
            self.post_message(self.Submitted(self, text))

    def action_newline(self) -> None:
        self.insert("\n")

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self.text:
            self.post_message(self.Typing())

    async def _on_paste(self, event: events.Paste) -> None:
        # Keep pasted line breaks as they are (they would otherwise be Enter presses).
        await super()._on_paste(event)
