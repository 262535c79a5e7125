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
    if _typed_ahead():
        # The probe reads stdin: it would eat those keys, give up, and its answer would
        # then arrive as keys of its own ("[?1;2c"). The keys matter more than pictures.
        log.info("keys typed ahead: not asking the terminal about images this time")
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


def _typed_ahead() -> bool:
    """Whether keys are waiting on stdin already (typed while tenchat starts). The
    terminal is put in cbreak mode for the look, so a line not yet ended counts too."""
    import select
    import termios
    import tty

    stdin = sys.__stdin__
    if stdin is None or not stdin.isatty():
        return False
    fd = stdin.fileno()
    try:
        before = termios.tcgetattr(fd)
    except termios.error:
        return False
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        return bool(select.select([fd], [], [], 0)[0])
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, before)
