"""The PostgreSQL backend (``storage = "postgresql://USER@HOST/DB"``): one database that
several relay nodes share.

:class:`PostgresStore` is the interface (relay/storage/interface.py) assembled from one
module per feature, as the SQLite backend is; each module's ``@write`` coroutines run in
the writer's batched transactions (relay/storage/writer.py, base.py). base.py says what
makes it safe with several nodes writing at once.
"""

from __future__ import annotations

from ..interface import Store
from .base import PostgresBase
from .blob_bytes import DatabaseBlobs
from .blobs import Blobs
from .devices import Devices
from .groups import Groups
from .identities import Identities
from .lead import Lead
from .linking import Linking
from .messages import Messages
from .operations import Operations
from .privacy import Privacy
from .rates import Rates
from .schema import MIGRATIONS, SchemaTooNew
from .social import Social
from .stories import Stories
from .upkeep import Upkeep
from .wallets import Wallets

__all__ = ["PostgresStore", "MIGRATIONS", "SchemaTooNew"]


class PostgresStore(Identities, Messages, Privacy, Groups, Blobs, Social, Stories, Wallets,
                    Devices, Linking,
                    Operations, Upkeep, Rates, Lead, PostgresBase, Store):
    """The relay's storage in a PostgreSQL database (see the feature modules)."""

    def blob_bytes(self) -> DatabaseBlobs:
        """The blobs' bytes, in this database too (every node serves every blob)."""
        return DatabaseBlobs(self.read_pool)
