"""The SQLite backend: one file in WAL mode, the embedded default (``storage = "sqlite"``).

:class:`SQLiteStore` is the interface (relay/storage/interface.py) assembled from one
module per feature; each module's ``@write`` functions run in the writer's batched
transactions (relay/storage/writer.py, base.py).
"""

from __future__ import annotations

from ..interface import Store
from .base import SQLiteBase
from .blobs import Blobs
from .devices import Devices
from .groups import Groups
from .identities import Identities
from .linking import Linking
from .messages import Messages
from .operations import Operations
from .privacy import Privacy
from .schema import MIGRATIONS
from .social import Social
from .stories import Stories
from .upkeep import Upkeep
from .wallets import Wallets

__all__ = ["SQLiteStore", "MIGRATIONS"]


class SQLiteStore(Identities, Messages, Privacy, Groups, Blobs, Social, Stories, Wallets,
                  Devices, Linking,
                  Operations, Upkeep, SQLiteBase, Store):
    """The relay's storage in one SQLite file (see the feature modules)."""
