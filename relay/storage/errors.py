"""Which storage failures are the disk refusing a write (answered ``storage_full``) or
the database out of reach (PostgreSQL: ``unavailable``), not bugs."""

from __future__ import annotations

import sqlite3
import sys
from typing import Final

from tenchat.common.errors import ErrorCode, ProtocolError

__all__ = ["storage_error", "is_conflict", "WriterGone"]

_DISK_ERRNOS: Final = frozenset({28, 27, 122, 5})  # ENOSPC, EFBIG, EDQUOT, EIO


class WriterGone(RuntimeError):
    """The SQLite writer's process ended with a batch in flight (sqlite/process.py)."""


def storage_error(exc: BaseException) -> ProtocolError | None:
    """storage_full for a write the disk refused (full, over a size limit, I/O error); the
    batch was rolled back. None for anything else (a bug)."""
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) is not None:
        primary = exc.sqlite_errorcode & 0xFF
        if primary in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
            return ProtocolError(ErrorCode.STORAGE_FULL, "the relay cannot write to its disk")
    if isinstance(exc, WriterGone):  # whether the batch committed is unknown: no retry
        return ProtocolError(ErrorCode.UNAVAILABLE, "the relay's writer restarted; retry")
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        return ProtocolError(ErrorCode.STORAGE_FULL, "the relay cannot write to its disk")
    return _postgres_error(exc)


# SQLSTATE 40001/40P01: a serialization failure or deadlock with another node's write.
_PG_CONFLICT: Final = ("40001", "40P01")


def is_conflict(exc: BaseException) -> bool:
    """A transaction rolled back for meeting another one (PostgreSQL: a deadlock or a
    serialization failure with another node's write), not for anything in it: run its
    writes again, one per transaction."""
    asyncpg = sys.modules.get("asyncpg")
    return (asyncpg is not None and isinstance(exc, asyncpg.PostgresError)
            and getattr(exc, "sqlstate", None) in _PG_CONFLICT)


# SQLSTATE classes: 53 insufficient resources (disk full, out of memory, too many
# connections); 08 connection exceptions, 57P operator intervention (shut down,
# restarting), and the conflicts above (a batch's writes are retried one by one first).
_PG_UNAVAILABLE: Final = ("08", "57P", *_PG_CONFLICT)


def _postgres_error(exc: BaseException) -> ProtocolError | None:
    """The PostgreSQL backend's failures that are not bugs: the server out of space, or
    out of reach (refused, restarting, a connection cut); asyncpg is only looked at if
    the backend loaded it."""
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return None
    state = getattr(exc, "sqlstate", None) or ""
    if isinstance(exc, asyncpg.PostgresError) and state.startswith("53100"):
        return ProtocolError(ErrorCode.STORAGE_FULL, "the relay's database is out of space")
    # (InternalClientError: a connection the server cut while idle, met by the next query)
    cut = (ConnectionError, asyncpg.InterfaceError, asyncpg.InternalClientError,
           asyncpg.PostgresConnectionError)
    if (isinstance(exc, cut)
            or (isinstance(exc, asyncpg.PostgresError) and state.startswith(_PG_UNAVAILABLE))):
        return ProtocolError(ErrorCode.UNAVAILABLE,
                             "the relay's database is out of reach; retry shortly")
    return None
