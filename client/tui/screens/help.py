"""Help: every key binding, as configured (Settings.keys applied)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..keys import ALL_KEYS, display_key
from ..slash_table import matching

__all__ = ["HelpScreen"]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss(None)", "Close")]

    def __init__(self, keymap: dict[str, str], *, slash_first: bool = False) -> None:
        super().__init__()
        self.keymap = keymap
        self.slash_first = slash_first  # opened by /help: the commands on top

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2), expand=True)
        table.add_column(style="bold", max_width=22)
        table.add_column(ratio=1)
        table.add_column(style="dim", no_wrap=True)
        for spec in ALL_KEYS:
            keys = self.keymap.get(spec.id, spec.key)
            table.add_row(display_key(keys), spec.description, spec.scope)
        commands = Table.grid(padding=(0, 2), expand=True)
        commands.add_column(style="bold", max_width=40)
        commands.add_column(ratio=1)
        for command in matching(""):
            commands.add_row(Text(f"/{command.name} {command.usage}".rstrip()),
                             Text(command.description))
        commands.add_row("//text", "Send text that starts with a slash")
        with VerticalScroll(classes="dialog wide", id="help"):
            yield Static("Slash commands" if self.slash_first else "Keys", classes="title")
            yield Static(Text("Esc, q or F1 closes this · ↑↓ PgUp PgDn scroll · "
                              + ("keys below" if self.slash_first else
                                 "slash commands (Tab completes them) below"), "bold"),
                         classes="hint", id="help-close")
            if self.slash_first:
                yield Static(commands, id="slash-commands")
                yield Static("Keys", classes="title")
            yield Static(table, id="keys")
            if not self.slash_first:
                yield Static("Slash commands (in the composer)", classes="title")
                yield Static(commands, id="slash-commands")
            yield Static(Text("Change keys in HOME/config.toml under [keys], e.g. "
                              'search = "ctrl+f,f3". Esc closes.', "dim"), classes="hint")
