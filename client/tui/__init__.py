"""The Textual TUI of tenchat: a thin layer over the client core (``tenchat.client.service``).

Only this package imports Textual; nothing here is loaded by the scripted CLI.
"""

from __future__ import annotations

__all__ = ["create_app"]


def create_app(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Lazy re-export of :func:`tenchat.client.tui.app.create_app`."""
    from .app import create_app as factory

    return factory(*args, **kwargs)
