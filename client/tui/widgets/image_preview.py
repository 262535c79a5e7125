"""An image in the terminal: Kitty or Sixel graphics through textual-image where the
terminal speaks them (``app.graphics``), half-blocks from :func:`imaging.preview_cells`
everywhere else (and in tests)."""

from __future__ import annotations

import io
from typing import Any

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.geometry import Size
from textual.widget import Widget

from ... import imaging

__all__ = ["ImagePreview", "half_blocks"]


def half_blocks(data: bytes, columns: int, max_rows: int | None = None) -> Text:
    """The image as rows of "▀" (top pixel as foreground, bottom one as background)."""
    out = Text(no_wrap=True, overflow="crop")
    cells = imaging.preview_cells(data, columns, max_rows=max_rows)
    for n, row in enumerate(cells):
        if n:
            out.append("\n")
        for top, bottom in row:
            out.append("▀", Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom)))
    return out


class ImagePreview(Widget):
    """Shows ``data`` (encoded image bytes) at most ``max_rows`` rows high, as wide as
    the widget allows; a one-line note when there is no image or it can't be read."""

    DEFAULT_CSS = """
    ImagePreview { height: auto; width: 1fr; }
    ImagePreview > .image-graphics { width: auto; height: auto; }
    """

    def __init__(self, data: bytes | None = None, *, max_rows: int = 12,
                 max_columns: int = 80, empty: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data = data
        self.max_rows = max_rows
        self.max_columns = max_columns
        self.empty = empty
        self._cache: tuple[int, Text] | None = None  # (columns, rendering)

    @property
    def mode(self) -> str:
        return getattr(self.app, "graphics", "halfblocks")

    def set_image(self, data: bytes | None) -> None:
        self.data = data
        self._cache = None
        if self.mode != "halfblocks" and self.is_mounted:
            self.remove_children()
            self._mount_graphics()
        self.refresh(layout=True)

    def on_mount(self) -> None:
        if self.mode != "halfblocks":
            self._mount_graphics()

    def compose(self) -> ComposeResult:
        return iter(())

    def _mount_graphics(self) -> None:
        if not self.data:
            return
        try:
            from PIL import Image as PILImage
            from textual_image.widget import SixelImage, TGPImage

            cls = SixelImage if self.mode == "sixel" else TGPImage
            image = PILImage.open(io.BytesIO(self.data))
            image.load()
        except Exception:  # unreadable: the half-block path says so
            return
        columns = min(self.max_columns, max(1, self.size.width or self.max_columns))
        rows = len(imaging.preview_cells(self.data, columns, max_rows=self.max_rows))
        widget = cls(image, classes="image-graphics")
        widget.styles.width = columns
        widget.styles.height = rows
        self.mount(widget)

    def _columns(self, width: int) -> int:
        return max(1, min(self.max_columns, width))

    def _text(self, width: int) -> Text:
        columns = self._columns(width)
        if self._cache is not None and self._cache[0] == columns:
            return self._cache[1]
        if not self.data:
            text = Text(self.empty, style="dim")
        else:
            try:
                text = half_blocks(self.data, columns, self.max_rows)
            except (imaging.ImageError, ValueError) as exc:
                text = Text(f"[no preview: {exc}]", style="dim")
        self._cache = (columns, text)
        return text

    def get_content_width(self, container: Size, viewport: Size) -> int:
        if self.mode != "halfblocks" and self.data:
            return max((int(c.styles.width.value) if c.styles.width else 0
                        for c in self.children), default=1) or 1
        return max(1, max((len(line) for line in self._text(container.width).split("\n")),
                          default=1))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if self.mode != "halfblocks" and self.data:
            return sum(int(c.styles.height.value) if c.styles.height else 0
                       for c in self.children) or 1
        return max(1, len(self._text(width).split("\n")))

    def render(self) -> RenderResult:
        if self.mode != "halfblocks" and self.data and self.children:
            return ""
        return self._text(self.size.width)
