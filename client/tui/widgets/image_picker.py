"""A file chosen by path (Tab completes it), with an image filter and a live preview of
the filtered image before it is sent. Used by the attachment picker and the post composer."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.suggester import Suggester
from textual.widgets import Input, Select, Static

from ... import imaging
from .. import render
from .image_preview import ImagePreview

__all__ = ["ImagePicker", "PathSuggester", "ORIGINAL", "PREVIEW_BYTES"]

ORIGINAL = "original"  # the filter choice that sends the file untouched
PREVIEW_BYTES = 40 * 1024 * 1024  # larger files are sent but not previewed


class PathSuggester(Suggester):
    """Completes the last part of a path from what is on disk (first match, dirs with /)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        return await asyncio.to_thread(complete_path, value)


def complete_path(value: str) -> str | None:
    typed = Path(value).expanduser()
    folder, stem = (typed, "") if value.endswith("/") else (typed.parent, typed.name)
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir()
                       if p.name.startswith(stem) and (stem.startswith(".")
                                                       or not p.name.startswith(".")))
    except OSError:
        return None
    if not names or names[0] == stem:
        return None
    return value + names[0][len(stem):]


class ImagePicker(Vertical):
    """Path, filter and preview. ``path`` is the chosen file (None until it exists)."""

    DEFAULT_CSS = """
    ImagePicker { height: auto; }
    ImagePicker #pick-row { height: auto; }
    ImagePicker #pick-path { width: 1fr; }
    ImagePicker #pick-filter { width: 22; }
    ImagePicker #pick-preview { max-height: 10; }
    """
    BINDINGS = [Binding("tab", "complete", "Complete the path", show=False)]

    def __init__(self, *, placeholder: str = "path of a file (Tab completes)",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self.path: Path | None = None
        self.is_image = False
        self._data: bytes | None = None  # the whole file, when it is an image to preview

    def compose(self) -> ComposeResult:
        with Horizontal(id="pick-row"):
            yield Input(placeholder=self.placeholder, id="pick-path",
                        suggester=PathSuggester())
            yield Select([(ORIGINAL, ORIGINAL)] + [(n, n) for n in imaging.FILTERS],
                         value=ORIGINAL, allow_blank=False, id="pick-filter")
        yield Static("", id="pick-info", classes="hint")
        yield ImagePreview(id="pick-preview", max_rows=8, max_columns=40)

    @property
    def filter(self) -> str:
        value = self.query_one("#pick-filter", Select).value
        return value if isinstance(value, str) else ORIGINAL

    def set_filter(self, name: str) -> None:
        self.query_one("#pick-filter", Select).value = name

    def set_path(self, value: str) -> None:
        self.query_one("#pick-path", Input).value = value

    def action_complete(self) -> None:
        field = self.query_one("#pick-path", Input)
        if field.has_focus and field._suggestion:
            field.value = field._suggestion
            field.cursor_position = len(field.value)
        else:
            self.screen.focus_next()

    @on(Input.Changed, "#pick-path")
    @on(Select.Changed, "#pick-filter")
    def _changed(self) -> None:
        self._refresh_preview(self.query_one("#pick-path", Input).value, self.filter)

    @work(exclusive=True, group="image-picker")
    async def _refresh_preview(self, value: str, spec: str) -> None:
        await asyncio.sleep(0.1)  # typing: wait for a pause
        path = Path(value).expanduser() if value.strip() else None
        info = self.query_one("#pick-info", Static)
        preview = self.query_one(ImagePreview)
        if path is None or not path.is_file():
            self.path, self.is_image, self._data = None, False, None
            info.update("" if path is None else "no such file")
            preview.set_image(None)
            return
        self.path = path
        shown: bytes | None = None
        try:
            size = path.stat().st_size
            data = await asyncio.to_thread(path.read_bytes) if size <= PREVIEW_BYTES else None
        except OSError as exc:
            info.update(render.plain(f"cannot read it: {exc.strerror or exc}"))
            return
        self.is_image, self._data = False, None
        if data is not None:
            with contextlib.suppress(imaging.ImageError, ValueError, OSError):
                kind, width, height = imaging.image_info(data)
                if kind in ("PNG", "JPEG", "WEBP", "GIF"):
                    self.is_image, self._data = True, data
                    shown = await asyncio.to_thread(self._filtered_preview, data, spec)
                    info.update(f"{kind} {width}×{height}, {size:,} bytes"
                                + ("" if spec == ORIGINAL else f" · filter {spec}"))
        if not self.is_image:
            info.update(render.plain(f"{path.name}, {size:,} bytes (not an image: sent as it is)"))
        self.query_one("#pick-filter", Select).disabled = not self.is_image
        preview.set_image(shown)

    @staticmethod
    def _filtered_preview(data: bytes, spec: str) -> bytes:
        small = imaging.thumbnail(data, (160, 160))
        return small if spec == ORIGINAL else imaging.apply_filter(small, spec)

    async def prepared(self, folder: Path) -> Path | None:
        """The file to send: the chosen one, or (a filter chosen) the filtered image written
        under ``folder`` with the same name. None if no file is chosen."""
        if self.path is None:
            return None
        if not self.is_image or self.filter == ORIGINAL:
            return self.path
        data = self._data if self._data is not None else self.path.read_bytes()
        out = folder / self.path.name
        filtered = await asyncio.to_thread(imaging.apply_filter, data, self.filter)
        await asyncio.to_thread(out.write_bytes, filtered)
        return out
