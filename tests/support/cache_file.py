"""The client's cache file opened beside the client, as the client opens it: a SQLCipher
database under the key made from the keystore's storage key (client/cache/store.py)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from tenchat.client.cache import MIGRATIONS, cache_key
from tenchat.client.db import open_encrypted

__all__ = ["open_cache_file", "open_home_cache", "UNDO_TO_13"]


# Takes a cache back from the latest schema to 13, for the tests of upgrades from older
# schemas: 15's early poll closes gone; 14's conversation summary gone (the triggers as
# migration 2 made them, the columns dropped).
UNDO_TO_13 = (
    "DROP TABLE poll_early_closes;"
    "DROP INDEX conversations_order; DROP TRIGGER messages_last;"
    "DROP TRIGGER messages_ai; DROP TRIGGER messages_ad;"
    + "".join(re.findall(r"CREATE TRIGGER messages_a[id] .*?END;", MIGRATIONS[1], re.S))
    + "".join(f"ALTER TABLE conversations DROP COLUMN {c};" for c in (
        "last_id", "last_outgoing", "last_text", "last_sent_at", "last_received_at",
        "last_status", "last_sender", "last_edited", "last_deleted")))


def open_cache_file(path: Path, storage_key: bytes, **connect_args: Any) -> sqlite3.Connection:
    """``path`` (HOME/cache.sqlite) opened with the cache key of ``storage_key``."""
    return open_encrypted(path, cache_key(storage_key), **connect_args)


def open_home_cache(home: Path, passphrase: str, **connect_args: Any) -> sqlite3.Connection:
    """HOME's cache, its storage key read from HOME's keystore with ``passphrase``."""
    from tenchat.client.keystore import Keystore

    secrets = Keystore.in_home(home).load(passphrase)
    return open_cache_file(home / "cache.sqlite", secrets.storage_key, **connect_args)
