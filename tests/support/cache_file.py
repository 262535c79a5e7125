"""The client's cache file opened beside the client, as the client opens it: a SQLCipher
database under the key made from the keystore's storage key (client/cache/store.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tenchat.client.cache import cache_key
from tenchat.client.db import open_encrypted

__all__ = ["open_cache_file", "open_home_cache"]


def open_cache_file(path: Path, storage_key: bytes, **connect_args: Any) -> sqlite3.Connection:
    """``path`` (HOME/cache.sqlite) opened with the cache key of ``storage_key``."""
    return open_encrypted(path, cache_key(storage_key), **connect_args)


def open_home_cache(home: Path, passphrase: str, **connect_args: Any) -> sqlite3.Connection:
    """HOME's cache, its storage key read from HOME's keystore with ``passphrase``."""
    from tenchat.client.keystore import Keystore

    secrets = Keystore.in_home(home).load(passphrase)
    return open_cache_file(home / "cache.sqlite", secrets.storage_key, **connect_args)
