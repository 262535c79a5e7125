"""Sticker packs: the installed ones (with a half-block preview of the first sticker),
making a pack from image files, installing one from a link —
``client.stickers.create_pack`` / ``install``, as `tenchat sticker pack create|install`."""

from __future__ import annotations

import shlex
from pathlib import Path
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
from ..keys import STICKER_PACK_KEYS
from ..widgets.image_preview import ImagePreview

__all__ = ["StickerPacksScreen", "image_paths"]

IMAGE_SUFFIXES = (".png", ".webp")


def image_paths(text: str) -> list[Path]:
    """Paths typed as a shell would split them; a folder stands for its PNG and WebP
    files (sorted by name)."""
    out: list[Path] = []
    for word in shlex.split(text):
        path = Path(word).expanduser()
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(path)
    return out


class StickerPacksScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close"),
                                            *key_bindings(STICKER_PACK_KEYS)]

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.packs: list[Any] = []
        self.mode = ""  # "", "name", "images", "install": what the input asks for
        self.new_name = ""
        self.link_shown: bytes | None = None  # the pack whose link is on screen

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="sticker-packs"):
            yield Static("Sticker packs", classes="title")
            yield OptionList(id="packs")
            yield ImagePreview(id="pack-preview", max_rows=6, max_columns=14)
            yield Static("", id="pack-link")
            yield Input(id="pack-input")
            yield Static("n new pack · i install a link · l show the link · Esc close",
                         id="packs-hint", classes="hint")

    async def on_mount(self) -> None:
        self.query_one("#pack-input", Input).display = False
        self.query_one("#packs", OptionList).focus()
        await self.reload()

    async def reload(self, select: bytes | None = None) -> None:
        self.packs = await self.client.stickers.packs()
        packs = self.query_one("#packs", OptionList)
        packs.clear_options()
        for pack in self.packs:
            n = len(pack.stickers)
            packs.add_option(Option(f"{pack.name}  ({n} sticker{'s' if n != 1 else ''})",
                                    id=pack.id.hex()))
        if not self.packs:
            packs.add_option(Option(Text("No packs yet: n makes one, i installs a link.",
                                         "dim"), disabled=True))
            return
        index = next((i for i, p in enumerate(self.packs) if p.id == select), 0)
        packs.highlighted = index

    @on(OptionList.OptionHighlighted, "#packs")
    async def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index >= len(self.packs):
            return
        pack = self.packs[event.option_index]
        data = None
        if pack.stickers:
            data = await self.client.cache.stickers.image(pack.stickers[0].ref.hash)
        self.query_one("#pack-preview", ImagePreview).set_image(data)
        if self.link_shown != pack.id:
            self.link_shown = None
            self.query_one("#pack-link", Static).update("")

    def _hint(self, text: str, bold: bool = False) -> None:
        self.query_one("#packs-hint", Static).update(Text(text, "bold" if bold else ""))

    def _ask(self, mode: str, placeholder: str) -> None:
        self.mode = mode
        field = self.query_one("#pack-input", Input)
        field.value = ""
        field.placeholder = placeholder
        field.display = True
        field.focus()

    def action_create_pack(self) -> None:
        self._ask("name", "the new pack's name, Enter")

    def action_install_pack(self) -> None:
        self._ask("install", "the pack's link (tenchat-stickers:…), Enter installs")

    def action_copy_link(self) -> None:
        index = self.query_one("#packs", OptionList).highlighted
        if index is None or index >= len(self.packs):
            return
        self.link_shown = self.packs[index].id
        self.query_one("#pack-link", Static).update(
            Text(f"link: {self.packs[index].link}", "bold"))
        self._hint("Give this link to share the pack (whoever has it can install it).")

    def action_close(self) -> None:
        if self.mode:
            self.mode = ""
            self.query_one("#pack-input", Input).display = False
            self.query_one("#packs", OptionList).focus()
            return
        self.dismiss(None)

    @on(Input.Submitted, "#pack-input")
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            return
        if self.mode == "name":
            self.new_name = value
            self._ask("images", "image files (PNG, WebP) or a folder of them, Enter makes "
                      "the pack")
        elif self.mode == "images":
            try:
                paths = image_paths(value)
            except ValueError as exc:
                self._hint(str(exc), bold=True)
                return
            self._hint(f"making {self.new_name!r} from {len(paths)} images…")
            self._run(self.client.stickers.create_pack(self.new_name, paths), "made")
        elif self.mode == "install":
            self._hint("installing…")
            self._run(self.client.stickers.install(value), "installed")

    @work(group="sticker-packs", exclusive=True, exit_on_error=False)
    async def _run(self, request: Any, done: str) -> None:
        try:
            pack = await request
        except (TenchatError, OSError) as exc:
            self._hint(str(exc), bold=True)
            return
        self.mode = ""
        self.query_one("#pack-input", Input).display = False
        await self.reload(select=pack.id)
        self.query_one("#packs", OptionList).focus()
        self._hint(f"{done} {pack.name!r} ({len(pack.stickers)} stickers) · "
                   "n new · i install · l link · Esc close")
        if done == "made":
            self.action_copy_link()
