"""What every repository of the cache shares: the one connection (so every repository
writes in the same transaction) and the storage key's seal."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..db import Database
    from .store import Cache

__all__ = ["Repo", "KeyRow", "marks"]


class KeyRow(NamedTuple):
    """A symmetric key held by id (audience keys, close-friends story keys)."""

    key_id: int
    key: bytes


def marks(values: list[bytes] | list[int]) -> str:
    """``?,?,…`` for an ``IN (…)`` over ``values``."""
    return ",".join("?" * len(values))


class Repo:
    """One feature's tables. Methods do not commit: writes belong to the open
    ``cache.transaction()``."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    @property
    def _db(self) -> Database:
        return self._cache._db

    def _seal(self, data: bytes) -> bytes:
        return self._cache._seal(data)

    def _open(self, data: bytes) -> bytes:
        return self._cache._open(data)
