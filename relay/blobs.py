"""Media blob bytes: :class:`BlobStore`, what the handlers need of them, and
:class:`BlobFiles`, content-addressed ciphertext under ``DATA/blobs`` (with SQLite; the
PostgreSQL backend keeps them in its database, relay/storage/postgres/blob_bytes.py).

A stored blob is ``blobs/<first 2 hex>/<hash hex>``, written once: the upload goes to a
partial file (``blobs/tmp/<user hex>.<hash hex>.part``, one per uploader, so an upload
resumes where its file ends), and when it is complete and hashes to its id it is
fsynced and renamed into place. Its metadata (owner, size) is in the store; the store
row is the truth, so a file without a row (a crash between rename and commit) is simply
written again by the next upload.

The relay can't read blobs: they are sealed client-side (``common.crypto.media``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from tenchat.common.crypto.media import new_hasher

from .files import DIR_MODE, FILE_MODE, private_dir

__all__ = ["BlobStore", "BlobFiles", "UploadLocks"]

_READ = 1024 * 1024


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore(Protocol):
    """The bytes of blobs: one partial upload per (uploader, blob), appended to in order,
    verified against the blob id and published; stored blobs read by range. Which blobs
    exist, and whose, is the store's (relay/storage); this is only their bytes."""

    def open(self) -> None: ...

    def upload_lock(self, user: bytes, blob: bytes) -> contextlib.AbstractAsyncContextManager[None]:
        """Serialise the appends of one upload across its uploader's connections."""
        ...

    async def received(self, user: bytes, blob: bytes) -> int:
        """Bytes of ``user``'s upload of ``blob`` received (0 if none)."""
        ...

    async def discard(self, user: bytes, blob: bytes) -> None:
        """Forget the partial upload (no error if there is none)."""
        ...

    async def append(self, user: bytes, blob: bytes, data: bytes) -> int:
        """Append to the partial upload; its new size."""
        ...

    async def publish(self, user: bytes, blob: bytes) -> bool:
        """Verify the complete upload against ``blob`` and store it; False, and the
        partial upload gone, if it does not hash to ``blob``."""
        ...

    async def read(self, blob: bytes, offset: int, length: int) -> bytes:
        """Bytes of a stored blob; FileNotFoundError if it is missing."""
        ...

    async def remove(self, blob: bytes) -> None:
        """Delete a stored blob's bytes (its row already gone); no error if missing."""
        ...

    async def stray_uploads(self, before_ms: int) -> list[tuple[bytes, bytes]]:
        """(user, blob) of partial uploads last written before ``before_ms`` — the
        retention removes those whose upload row is gone."""
        ...


class UploadLocks:
    """One asyncio lock per upload in progress, while connections use it."""

    def __init__(self) -> None:
        # (user, blob) -> (lock, connections using it); dropped when the count reaches 0.
        self._locks: dict[tuple[bytes, bytes], tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def upload_lock(self, user: bytes, blob: bytes) -> AsyncIterator[None]:
        """Serialise the appends of one upload across its uploader's connections."""
        key = (user, blob)
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class BlobFiles(UploadLocks):
    """The blob directory: partial uploads, appends, verify-and-publish, ranged reads."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.tmp = root / "tmp"

    def open(self) -> None:
        private_dir(self.root)
        private_dir(self.tmp)

    def path(self, blob: bytes) -> Path:
        h = blob.hex()
        return self.root / h[:2] / h

    def partial(self, user: bytes, blob: bytes) -> Path:
        return self.tmp / f"{user.hex()}.{blob.hex()}.part"

    async def received(self, user: bytes, blob: bytes) -> int:
        """Bytes of ``user``'s upload of ``blob`` on disk (0 if none)."""
        try:
            return self.partial(user, blob).stat().st_size
        except FileNotFoundError:
            return 0

    async def discard(self, user: bytes, blob: bytes) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.partial(user, blob).unlink()

    async def stray_uploads(self, before_ms: int) -> list[tuple[bytes, bytes]]:
        """Partial files older than ``before_ms`` (the tmp directory holds only
        unfinished uploads, so listing it is cheap)."""

        def old_files() -> list[tuple[bytes, bytes]]:
            found = []
            with contextlib.suppress(FileNotFoundError), os.scandir(self.tmp) as entries:
                for entry in entries:
                    parts = entry.name.split(".")
                    if len(parts) != 3 or parts[2] != "part":
                        continue
                    try:
                        if entry.stat().st_mtime * 1000 >= before_ms:
                            continue
                        found.append((bytes.fromhex(parts[0]), bytes.fromhex(parts[1])))
                    except (OSError, ValueError):
                        continue
            return found

        return await asyncio.to_thread(old_files)

    async def append(self, user: bytes, blob: bytes, data: bytes) -> int:
        """Append to the partial file; its new size."""
        path = self.partial(user, blob)

        def write() -> int:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            with open(fd, "ab", buffering=0) as fh:
                start = fh.tell()
                try:
                    view = memoryview(data)
                    while view:
                        view = view[fh.write(view) or 0 :]
                except OSError:
                    # e.g. the disk is full: leave the file as it was, so the refused chunk
                    # changed nothing and the upload resumes at the same offset.
                    with contextlib.suppress(OSError):
                        os.truncate(path, start)
                    raise
                return fh.tell()

        return await asyncio.to_thread(write)

    async def publish(self, user: bytes, blob: bytes) -> bool:
        """Verify the complete partial file against ``blob`` and move it into place
        (fsync, rename, fsync the directory). False, and the partial file gone, if it
        does not hash to ``blob``."""
        src = self.partial(user, blob)
        dst = self.path(blob)

        def run() -> bool:
            hasher = new_hasher()
            with src.open("rb") as fh:
                while data := fh.read(_READ):
                    hasher.update(data)
                if hasher.digest() != blob:
                    src.unlink()
                    return False
                os.fsync(fh.fileno())
            dst.parent.mkdir(mode=DIR_MODE, exist_ok=True)
            os.replace(src, dst)
            _fsync_dir(dst.parent)
            return True

        return await asyncio.to_thread(run)

    async def read(self, blob: bytes, offset: int, length: int) -> bytes:
        path = self.path(blob)

        def run() -> bytes:
            with path.open("rb") as fh:
                fh.seek(offset)
                return fh.read(length)

        return await asyncio.to_thread(run)

    async def remove(self, blob: bytes) -> None:
        """Delete a stored blob's file (its row already gone); no error if it is missing."""

        def run() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.path(blob).unlink()

        await asyncio.to_thread(run)
