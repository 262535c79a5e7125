"""Errors as the TUI shows them. A small module of its own: the app imports it before its
first frame, and render.py (rich's markdown) is not needed that early."""

from __future__ import annotations

from ...common.errors import ErrorCode

__all__ = ["human_error"]


def human_error(text: str) -> str:
    """``bad_handle: invalid handle 'x'…`` → ``Invalid handle 'x'…``: the protocol's error
    codes are for programs and logs, not for people."""
    code, sep, rest = text.partition(": ")
    if sep and code in ErrorCode._value2member_map_ and rest:
        return rest[:1].upper() + rest[1:]
    return text
