"""The relay's storage: one interface (:class:`Store`), its record types, and backends.

- ``interface.py``: :class:`Store`, what the relay needs of its storage;
- ``records.py``: the types it takes and returns;
- ``writer.py``: group commit for any backend (a write is one ``@write`` function);
- ``sqlite/``: the SQLite backend, one module per feature.

Nothing outside this package writes SQL (tests/test_layout.py checks).
"""

from __future__ import annotations

from .errors import storage_error
from .interface import Store
from .records import (
    AuditEntry,
    BatchListener,
    BlobBegun,
    BundleRecord,
    CommitListener,
    GroupEntry,
    GroupHead,
    GroupListener,
    HandleRecord,
    MembersChanged,
    RetentionSwept,
    Stored,
    StoredMessage,
    SweptStories,
)
from .sqlite import MIGRATIONS, SQLiteStore

__all__ = [
    "Store", "SQLiteStore", "MIGRATIONS", "storage_error", "AuditEntry", "BatchListener",
    "BlobBegun", "BundleRecord", "CommitListener", "GroupEntry", "GroupHead",
    "GroupListener", "HandleRecord", "MembersChanged", "RetentionSwept", "Stored",
    "StoredMessage", "SweptStories",
]
