"""The composer: Enter sends; Ctrl+J (or Shift+Enter / Alt+Enter) starts a new line;
multi-line paste goes in as it is. Posts typing activity for the typing indicator."""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from ..keys import CHAT_KEYS

__all__ = ["Composer"]


class Composer(TextArea):
    """A message editor that grows up to a few lines."""

    # Not priority bindings: those run as soon as the key is read, ahead of characters
    # still queued for this widget, so a fast burst ("hello⏎" from a paste or a quick
    # typist) would send before "hello" was inserted. _on_key runs them in order instead.
    BINDINGS = [
        Binding("enter", "send", "Send", id="send", show=False),
        Binding("ctrl+j,shift+enter,alt+enter", "newline", "New line", id="newline",
                show=False),
        Binding("up", "select_last", "Select the latest message", id="select_last",
                show=False),
        Binding("tab", "complete", "Complete a slash command", id="complete", show=False),
        # TextArea binds some of the chat's keys (F6 select line, F7 select all,
        # Ctrl+PgUp/PgDn scroll sideways): from the composer they are the chat's.
        *(Binding(key, f"screen.{spec.id}", show=False, id=spec.id)
          for spec in CHAT_KEYS for key in spec.key.split(",")
          if key in TextArea._merge_bindings().key_to_bindings),
    ]
    _IN_ORDER = frozenset({"send", "newline"})

    class Submitted(Message):
        """The user pressed Enter with some text."""

        def __init__(self, composer: Composer, text: str) -> None:
            super().__init__()
            self.composer = composer
            self.text = text

    class Typing(Message):
        """The text changed because the user typed (not because it was cleared)."""

    class SelectLast(Message):
        """Up in an empty composer: the user wants to act on the latest message."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, soft_wrap=True, show_line_numbers=False,
                         tab_behavior="focus", compact=True)
        self.placeholder = "Write a message — Enter sends, Ctrl+J new line, /help commands"

    async def _on_key(self, event: events.Key) -> None:
        own = self._bindings.key_to_bindings.get(event.key, ())
        for binding in own:
            if binding.action in self._IN_ORDER:
                event.prevent_default()
                event.stop()
                await self.run_action(binding.action)
                return
        if event.key.startswith("alt+") and not own:
            # Alt+letter arrives as ESC then the letter, with the letter as its character:
            # TextArea would type it. It is a shortcut (or nothing): let it bubble up to
            # the bindings, and type nothing.
            event.prevent_default()
            return
        await super()._on_key(event)

    def action_send(self) -> None:
        text = self.text.strip("\n")
        if text.strip():
            # Clear here, in key order: keys after Enter belong to the next message.
            self.clear()
            self.post_message(self.Submitted(self, text))

    def action_complete(self) -> None:
        """Tab: complete a slash command's name; elsewhere the next widget."""
        from ..slash_table import complete

        done = complete(self.text)
        if done is None:
            self.screen.focus_next()
        elif done != self.text:
            self.load_text(done)
            self.move_cursor(self.document.end)

    def action_newline(self) -> None:
        self.insert("\n")

    def action_select_last(self) -> None:
        if self.text:
            self.action_cursor_up()
        else:
            self.post_message(self.SelectLast())

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self.text:
            self.post_message(self.Typing())

    # No _on_paste here: TextArea's handler inserts a paste as it is (line breaks kept),
    # and Textual calls every class's handler along the MRO — an override that called
    # super() as well inserted each paste twice.
