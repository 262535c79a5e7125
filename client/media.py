"""Attachments on the wire: seal a file and upload it as a blob; fetch a blob and open it.

The sealing is :mod:`tenchat.common.crypto.media`; this module moves the bytes
(``blob_begin`` / ``blob_chunk`` / ``blob_get``, docs/protocol.md §6A) through a
:class:`~tenchat.client.connection.RelayConnection`, resuming an upload from the
relay's ``blob_status.offset`` after a dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import mimetypes
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

from ..common import frames as f
from ..common.crypto import media
from ..common.crypto.errors import BlobHashMismatch, MediaError
from ..common.errors import ErrorCode, TenchatError
from .connection import ConnectionLost, RelayConnection, RelayError

__all__ = ["AttachmentError", "upload", "download", "download_bytes", "upload_bytes",
           "upload_sealed", "fetch_bytes", "UPLOAD_CHUNK", "DOWNLOAD_CHUNK"]

UPLOAD_CHUNK = 256 * 1024  # bytes per blob_chunk (less if the relay's max_frame is smaller)
DOWNLOAD_CHUNK = 1024 * 1024  # bytes asked per blob_get (the relay may send fewer)
FRAME_OVERHEAD = 1024  # room in a frame for everything but the data
RETRIES = 3  # reconnects per upload or download before giving up

Connect = Callable[[], Awaitable[RelayConnection]]


class AttachmentError(TenchatError):
    """An attachment could not be sent or opened; the message says why, for a person."""


def _chunk_size(conn: RelayConnection, wanted: int) -> int:
    return max(1024, min(wanted, conn.max_frame - FRAME_OVERHEAD))


async def upload(connect: Connect, path: Path, *, mime: str | None = None) -> media.MediaRef:
    """Seal ``path`` under a fresh key (into a temporary file) and upload it; its MediaRef.

    ``connect`` returns the current connection (reconnecting if it dropped): an upload
    cut off resumes at the offset the relay reports.
    """
    try:
        size = path.stat().st_size
        src = path.open("rb")
    except OSError as exc:
        raise AttachmentError(f"cannot read {path}: {exc.strerror or exc}") from None
    with src, tempfile.TemporaryFile(prefix="tenchat-") as sealed:
        conn = await connect()
        if conn.max_blob == 0:
            raise AttachmentError("this relay does not store attachments")
        if media.sealed_size(size) > conn.max_blob:
            raise AttachmentError(f"{path.name} is too large for this relay "
                                  f"({size} bytes; at most about {conn.max_blob} bytes)")
        mk = await asyncio.to_thread(media.encrypt_stream, src, sealed)
        for attempt in range(RETRIES + 1):
            try:
                await _send_blob(conn, sealed, mk)
                break
            except ConnectionLost:
                if attempt == RETRIES:
                    raise
                conn = await connect()
    name = path.name
    mime = mime or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return media.MediaRef(hash=mk.blob_hash, key=mk.key, size=mk.size, mime=mime,
                          name=name[:255])


async def upload_bytes(connect: Connect, data: bytes, *, name: str = "",
                       mime: str = "application/octet-stream") -> media.MediaRef:
    """Seal ``data`` under a fresh key in memory and upload it (like :func:`upload`, for
    small files already in memory, such as a story's image: no temporary files)."""
    conn = await connect()
    if conn.max_blob == 0:
        raise AttachmentError("this relay does not store attachments")
    if media.sealed_size(len(data)) > conn.max_blob:
        raise AttachmentError(f"the file is too large for this relay ({len(data)} bytes; "
                              f"at most about {conn.max_blob} bytes)")
    blob, mk = await asyncio.to_thread(media.encrypt, data)
    sealed = io.BytesIO(blob)
    for attempt in range(RETRIES + 1):
        try:
            # Small and in memory: pieces as large as a frame allows, fewer round trips.
            await _send_blob(conn, sealed, mk, chunk=DOWNLOAD_CHUNK)
            break
        except ConnectionLost:
            if attempt == RETRIES:
                raise
            conn = await connect()
    return media.MediaRef(hash=mk.blob_hash, key=mk.key, size=mk.size, mime=mime,
                          name=name[:255])


async def _send_blob(conn: RelayConnection, sealed: BinaryIO, mk: media.MediaKey, *,
                     chunk: int = UPLOAD_CHUNK) -> None:
    try:
        status = await conn.request(f.BlobBegin, hash=mk.blob_hash, size=mk.blob_size)
        assert isinstance(status, f.BlobStatus)
        offset, piece = status.offset, _chunk_size(conn, chunk)
        while offset < mk.blob_size:
            sealed.seek(offset)
            data = sealed.read(piece)
            status = await conn.request(f.BlobChunk, hash=mk.blob_hash, offset=offset, data=data)
            assert isinstance(status, f.BlobStatus)
            offset = status.offset
    except RelayError as exc:
        reasons = {"quota_exceeded": "your attachment quota on the relay is used up",
                   "too_large": "the file is too large for this relay"}
        raise AttachmentError(reasons.get(exc.code, f"the relay refused the upload: {exc}")
                              ) from None


async def download(connect: Connect, ref: media.MediaRef, out: Path) -> int:
    """Fetch the blob of ``ref``, check its hash and every chunk, and write the file to
    ``out`` (atomically: nothing is left at ``out`` on failure). The bytes written."""
    with tempfile.TemporaryFile(prefix="tenchat-") as blob:
        conn = await connect()
        for attempt in range(RETRIES + 1):
            try:
                await _fetch_blob(conn, ref, blob)
                break
            except ConnectionLost:
                if attempt == RETRIES:
                    raise
                conn = await connect()
        blob.seek(0)
        part = out.with_name(f".{out.name}.{os.urandom(4).hex()}.part")
        try:
            with part.open("xb") as fh:
                written = await asyncio.to_thread(
                    media.decrypt_stream, blob, fh, ref.key, ref.hash, size=ref.size)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(part, out)
        except BlobHashMismatch:
            raise AttachmentError("the attachment does not match its id: it was corrupted or "
                                  "tampered with on the relay; nothing was saved") from None
        except MediaError as exc:
            raise AttachmentError(f"the attachment failed to decrypt ({exc}); "
                                  "nothing was saved") from None
        except OSError as exc:
            raise AttachmentError(f"cannot write {out}: {exc.strerror or exc}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
    return written


async def download_bytes(connect: Connect, ref: media.MediaRef) -> bytes:
    """Fetch the blob of ``ref`` into memory, check its hash and every chunk, and return
    the plaintext (for small files shown at once, such as a story's image: no disk)."""
    conn = await connect()
    for attempt in range(RETRIES + 1):
        try:
            data = await _fetch_parallel(conn, ref)
            break
        except ConnectionLost:
            if attempt == RETRIES:
                raise
            conn = await connect()
    try:
        return await asyncio.to_thread(media.decrypt, data, ref.key, ref.hash, size=ref.size)
    except BlobHashMismatch:
        raise AttachmentError("the file does not match its id: it was corrupted or "
                              "tampered with on the relay") from None
    except MediaError as exc:
        raise AttachmentError(f"the file failed to decrypt ({exc})") from None


async def _fetch_parallel(conn: RelayConnection, ref: media.MediaRef) -> bytes:
    """The whole blob, its pieces asked for all at once (the size is known), so a
    download costs about one round trip plus the transfer, not one round trip a piece."""
    expected = ref.blob_size
    piece = _chunk_size(conn, DOWNLOAD_CHUNK)

    async def one(offset: int) -> bytes:
        buf = io.BytesIO()
        while buf.tell() < min(piece, expected - offset):
            at = offset + buf.tell()
            try:
                data = await conn.request(f.BlobGet, hash=ref.hash, offset=at,
                                          length=min(piece, expected - offset) - buf.tell())
            except RelayError as exc:
                if exc.code == ErrorCode.NOT_FOUND:
                    raise AttachmentError("the relay no longer has this file") from None
                raise AttachmentError(f"the relay refused the download: {exc}") from None
            assert isinstance(data, f.BlobData)
            if data.offset != at or data.size != expected or not data.data:
                raise AttachmentError("the relay sent a blob of the wrong size")
            buf.write(data.data)
        return buf.getvalue()

    parts = await asyncio.gather(*(one(o) for o in range(0, expected, piece)))
    return b"".join(parts)


async def _fetch_blob(conn: RelayConnection, ref: media.MediaRef, blob: BinaryIO) -> None:
    """Read the whole blob into ``blob`` (from its current end, so a retry resumes)."""
    expected = ref.blob_size
    blob.seek(0, os.SEEK_END)
    offset = blob.tell()
    while offset < expected:
        try:
            data = await conn.request(f.BlobGet, hash=ref.hash, offset=offset,
                                      length=min(DOWNLOAD_CHUNK, expected - offset))
        except RelayError as exc:
            if exc.code == ErrorCode.NOT_FOUND:
                raise AttachmentError("the relay no longer has this attachment") from None
            raise AttachmentError(f"the relay refused the download: {exc}") from None
        assert isinstance(data, f.BlobData)
        if data.offset != offset or data.size != expected or not data.data:
            raise AttachmentError("the relay sent a blob of the wrong size; nothing was saved")
        blob.write(data.data)
        offset += len(data.data)


async def upload_sealed(connect: Connect, data: bytes, *, key: bytes | None = None
                       ) -> media.MediaKey:
    """Seal small ``data`` in memory (under ``key``, default a fresh one) and upload it."""
    import io

    conn = await connect()
    if conn.max_blob == 0:
        raise AttachmentError("this relay does not store blobs")
    blob, mk = media.encrypt(data, key=key)
    if len(blob) > conn.max_blob:
        raise AttachmentError("too large for this relay")
    for attempt in range(RETRIES + 1):
        try:
            await _send_blob(conn, io.BytesIO(blob), mk)
            return mk
        except ConnectionLost:
            if attempt == RETRIES:
                raise
            conn = await connect()
    raise AssertionError("unreachable")


async def fetch_bytes(connect: Connect, blob_id: bytes, key: bytes, *, max_size: int) -> bytes:
    """Fetch a small blob whose size we don't know yet (at most ``max_size`` bytes), check
    its hash and open it; raises AttachmentError (``tampered`` in the message) on a bad one."""
    conn = await connect()
    parts: list[bytes] = []
    offset, total = 0, None
    while total is None or offset < total:
        try:
            data = await conn.request(f.BlobGet, hash=blob_id, offset=offset,
                                      length=min(DOWNLOAD_CHUNK, max_size))
        except RelayError as exc:
            if exc.code == ErrorCode.NOT_FOUND:
                raise AttachmentError("the relay does not have this blob") from None
            raise AttachmentError(f"the relay refused the download: {exc}") from None
        assert isinstance(data, f.BlobData)
        if total is None:
            total = data.size
            if total > max_size:
                raise AttachmentError(f"the blob is too large ({total} > {max_size} bytes)")
        if data.offset != offset or data.size != total or not data.data:
            raise AttachmentError("the relay sent a blob of the wrong size")
        parts.append(data.data)
        offset += len(data.data)
    try:
        return media.decrypt(b"".join(parts), key, blob_id)
    except BlobHashMismatch:
        raise AttachmentError("the blob does not match its id: it was corrupted or "
                              "tampered with on the relay") from None
    except MediaError as exc:
        raise AttachmentError(f"the blob failed to decrypt ({exc})") from None
