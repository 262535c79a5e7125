"""Textual bindings made from the key table (keys.py), one way for every screen."""

from __future__ import annotations

from collections.abc import Iterable

from textual.binding import Binding, BindingType

from .keys import KeySpec

__all__ = ["key_bindings"]


def key_bindings(specs: Iterable[KeySpec], *, footer: bool = False) -> list[BindingType]:
    """A binding per key spec, each with its id (so a user's key settings rebind it);
    shown in the footer when ``footer`` and the spec says so."""
    return [Binding(spec.key, spec.id, spec.description, id=spec.id,
                    show=footer and spec.show) for spec in specs]
