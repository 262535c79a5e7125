"""The store a relay's ``storage`` setting names (relay/config.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..blobs import BlobFiles, BlobStore
from .interface import Store
from .sqlite import SQLiteStore

__all__ = ["store_for", "blobs_for", "storage_label"]


def store_for(storage: str, db_path: Path, *, sync: str, writer: str = "thread",
              **settings: Any) -> Store:
    """An unopened store: SQLite at ``db_path`` for "sqlite" (its transactions in a
    ``writer`` thread or process), else PostgreSQL at the URL ``storage`` (asyncpg, from
    the ``cluster`` extra, is imported only then). ``settings`` are the limits and clock
    both take (batch_max, otk_max, queue_max, ...)."""
    if storage == "sqlite":
        return SQLiteStore(db_path, sync=sync, writer=writer, **settings)
    try:
        from .postgres import PostgresStore
    except ImportError as exc:
        raise RuntimeError(f"storage = postgresql needs {exc.name}:"
                           " pip install 'tenchat[cluster]'") from None

    return PostgresStore(storage, **settings)


def blobs_for(store: Store, blob_dir: Path) -> BlobStore:
    """Where the blobs' bytes go beside ``store``: its database for PostgreSQL (so every
    node serves every blob), else files under ``blob_dir``."""
    if not isinstance(store, SQLiteStore):
        from .postgres import PostgresStore

        if isinstance(store, PostgresStore):
            return store.blob_bytes()
    return BlobFiles(blob_dir)


def storage_label(storage: str) -> str:
    """``storage`` as it may be logged or shown: a URL without its password."""
    parts = urlsplit(storage)
    if parts.password is None:
        return storage
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
