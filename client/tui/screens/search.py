"""Search: full text over the local cache, everywhere or in the open conversation."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ....common.errors import TenchatError
from ...conv import is_group
from .. import render

__all__ = ["SearchScreen"]


class SearchScreen(ModalScreen[Any]):
    """Dismisses with the chosen SearchHit (the chat jumps to it in context), or None."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("ctrl+t", "toggle_scope", "All / this conversation"),
        Binding("down", "results", "Results", show=False),
    ]

    here_only: reactive[bool] = reactive(False)

    def __init__(self, client: Any, peer: bytes | None, conversations: dict[bytes, Any]) -> None:
        super().__init__()
        self.client = client
        self.peer = peer
        self.conversations = conversations
        self.hits: list[Any] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="search"):
            yield Static("Search messages", classes="title")
            yield Input(placeholder="words to find", id="query")
            yield Static("", id="scope", classes="hint")
            yield OptionList(id="results")

    def on_mount(self) -> None:
        self.watch_here_only(self.here_only)
        self.query_one("#query", Input).focus()

    def watch_here_only(self, here: bool) -> None:
        if not self.is_mounted:
            return
        name = self._peer_name(self.peer) if self.peer else None
        scope = f"in @{name}" if here and name else "in all conversations"
        self.query_one("#scope", Static).update(render.plain(
            f"Searching {scope} · Ctrl+T switches · ↓ results · Enter jumps · Esc closes"))
        self._search(self.query_one("#query", Input).value)

    def action_toggle_scope(self) -> None:
        if self.peer is not None:
            self.here_only = not self.here_only

    def action_results(self) -> None:
        results = self.query_one("#results", OptionList)
        if self.hits:
            results.focus()
            results.highlighted = results.highlighted or 0

    def _peer_name(self, peer: bytes | None) -> str:
        conv = self.conversations.get(peer) if peer else None
        return conv.handle if conv and conv.handle else (peer.hex()[:12] if peer else "?")

    @on(Input.Changed, "#query")
    def _changed(self, event: Input.Changed) -> None:
        self._search(event.value)

    @on(Input.Submitted, "#query")
    def _submitted(self) -> None:
        if self.hits:
            self.dismiss(self.hits[0])

    @work(exclusive=True, group="search")
    async def _search(self, query: str) -> None:
        results = self.query_one("#results", OptionList)
        if not query.strip():
            self.hits = []
            results.clear_options()
            return
        peer = self.peer if self.here_only else None
        self.hits = await self.client.search(query, peer=peer, limit=50)
        options = []
        authors: dict[bytes, str] = {}
        for i, hit in enumerate(self.hits):
            row = hit.message
            if is_group(row.peer):  # a group: its name, and who wrote the message
                conv = self.conversations.get(row.peer)
                where = f"# {conv.title}" if conv is not None and conv.title else "# group"
                who = "you" if row.outgoing else await self._author(row.sender, authors)
            else:
                who = "you" if row.outgoing else (hit.handle or "?")
                where = f"@{hit.handle or '?'}"
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{where:<14}", "bold")
            line.append(render.local_dt(row.sent_at, self.app.tz).strftime("%Y-%m-%d %H:%M"),  # type: ignore[attr-defined]
                        "dim")
            line.append(f"  {who}: ", "dim")
            line.append_text(_snippet(hit.snippet))
            line.truncate(max(results.size.width - 2, 20), overflow="ellipsis")
            options.append(Option(line, id=str(i)))
        results.clear_options()
        results.add_options(options or [Option(Text("no matches", "dim italic"),
                                               disabled=True)])

    async def _author(self, user: bytes | None, known: dict[bytes, str]) -> str:
        if user is None:
            return "?"
        if user not in known:
            try:
                known[user] = await self.client.display_name(user)
            except (TenchatError, OSError):  # unknown: still a result worth showing
                known[user] = "?"
        return known[user]

    @on(OptionList.OptionSelected, "#results")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(self.hits[int(event.option.id)])


def _snippet(snippet: str) -> Text:
    """FTS5's snippet marks hits with [ ]: show them highlighted instead."""
    out = Text(no_wrap=True, overflow="ellipsis")
    bold = False
    for part in snippet.replace("\n", " ").replace("]", "[").split("["):
        out.append(part, "bold reverse" if bold else "")
        bold = not bold
    return out
