"""Which way the terminal can show images: the Kitty graphics protocol, Sixel, or
half-blocks (▀ in two colours, which every colour terminal draws).

The terminal is asked once, before Textual starts (afterwards Textual owns stdin and
would swallow the answer). ``TENCHAT_IMAGES=halfblocks|kitty|sixel`` overrides it.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["MODES", "detect"]

MODES = ("halfblocks", "kitty", "sixel")

log = logging.getLogger("tenchat.tui")


def detect() -> str:
    """The best mode this terminal supports; "halfblocks" when not on a terminal."""
    forced = os.environ.get("TENCHAT_IMAGES", "").strip().lower()
    if forced in MODES:
        return forced
    stdout = sys.__stdout__
    if stdout is None or not stdout.isatty():
        return "halfblocks"
    try:  # textual-image asks the terminal (protocols, cell size) when it is imported
        from textual_image import renderable, widget  # noqa: F401
    except Exception as exc:  # a terminal that answers nonsense still gets half-blocks
        log.info("image protocol detection failed: %s", exc)
        return "halfblocks"
    if renderable.Image is renderable.SixelImage:
        return "sixel"
    if renderable.Image is renderable.TGPImage:
        return "kitty"
    return "halfblocks"
