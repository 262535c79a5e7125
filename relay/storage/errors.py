"""Which storage failures are the disk refusing a write (answered ``storage_full``)."""

from __future__ import annotations

import sqlite3
from typing import Final

from tenchat.common.errors import ErrorCode, ProtocolError

__all__ = ["storage_error"]

_DISK_ERRNOS: Final = frozenset({28, 27, 122, 5})  # ENOSPC, EFBIG, EDQUOT, EIO


def storage_error(exc: BaseException) -> ProtocolError | None:
    """storage_full for a write the disk refused (full, over a size limit, I/O error); the
    batch was rolled back. None for anything else (a bug)."""
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) is not None:
        primary = exc.sqlite_errorcode & 0xFF
        if primary in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
            return ProtocolError(ErrorCode.STORAGE_FULL, "the relay cannot write to its disk")
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        return ProtocolError(ErrorCode.STORAGE_FULL, "the relay cannot write to its disk")
    return None
