"""The sticker picker: every sticker of the installed packs, with a half-block preview of
the highlighted one; Enter sends it."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from .. import render

__all__ = ["StickerScreen", "PREVIEW_COLUMNS"]

PREVIEW_COLUMNS = 24  # cells across a preview (12 rows at most)


class StickerScreen(ModalScreen[tuple[int, int] | None]):
    """Dismisses with (pack number, sticker index) into ``packs``, or None.

    ``packs`` are client.stickers.StickerPack; ``images`` maps a sticker's blob id to its
    image bytes (from the cache: installed packs keep theirs)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    DEFAULT_CSS = """
    StickerScreen #sticker-body { height: auto; max-height: 16; }
    StickerScreen #sticker-list { width: 1fr; min-width: 20; height: auto; max-height: 14; }
    StickerScreen #sticker-preview { width: 26; height: auto; padding: 0 1; }
    """

    def __init__(self, packs: list[Any], images: dict[bytes, bytes]) -> None:
        super().__init__()
        self.packs = packs
        self.images = images
        self._cells: dict[bytes, Any] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="stickers"):
            yield Static("Send a sticker", classes="title")
            if not self.packs:
                yield Static("No sticker packs installed. Make one with `tenchat sticker "
                             "pack create`, or install one with `tenchat sticker pack "
                             "install LINK`.", id="no-stickers")
            else:
                with Horizontal(id="sticker-body"):
                    yield OptionList(*[
                        Option(render.plain(f"{pack.name} · {i + 1} {entry.name}"), id=f"{p}:{i}")
                        for p, pack in enumerate(self.packs)
                        for i, entry in enumerate(pack.stickers)], id="sticker-list")
                    yield Static("", id="sticker-preview")
            yield Static("↑↓ choose · Enter sends · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        if self.packs:
            options = self.query_one(OptionList)
            options.focus()
            options.highlighted = 0
            self._preview(0, 0)

    @staticmethod
    def _ids(option_id: str | None) -> tuple[int, int]:
        pack, index = (option_id or "0:0").split(":")
        return int(pack), int(index)

    def _preview(self, pack: int, index: int) -> None:
        from ...imaging import ImageError, preview_cells

        entry = self.packs[pack].stickers[index]
        cells = self._cells.get(entry.ref.hash)
        if cells is None:
            data = self.images.get(entry.ref.hash)
            try:
                cells = preview_cells(data, PREVIEW_COLUMNS, max_rows=12) if data else []
            except ImageError:
                cells = []
            self._cells[entry.ref.hash] = cells
        self.query_one("#sticker-preview", Static).update(
            render.half_block_text(cells) if cells else render.plain(f"({entry.name}: no preview)"))

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._preview(*self._ids(event.option.id))

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self._ids(event.option.id))
