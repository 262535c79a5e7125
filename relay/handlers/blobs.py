"""Handlers of media blobs: resumable, hash-checked uploads and ranged downloads."""

from __future__ import annotations

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import (
    BlobBegin,
    BlobChunk,
    BlobData,
    BlobGet,
    BlobStatus,
)

from ..blobs import BlobStore
from ..session import Session, check_authenticated
from ..storage import BlobBegun
from .table import Answer, HandlerTable

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()


_BLOB_DATA_OVERHEAD = 256


def _blob_files(session: Session) -> BlobStore:
    if session.blobs is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, "this relay stores no blobs")
    return session.blobs


@HANDLERS.on(BlobBegin)
async def blob_begin(session: Session, frame: BlobBegin) -> Answer:
    user = check_authenticated(session)
    files = _blob_files(session)
    if frame.size > session.config.max_blob:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"a blob of {frame.size} bytes is over max_blob {session.config.max_blob}",
        )

    # `tenchat-relay admin quota` may set a quota of one's own
    quota = await session.store.blob_quota(user)
    if quota is None:
        quota = session.config.blob_quota
    # Awaited here (not a Later): the answer needs the partial upload's size after it.
    begun: BlobBegun = await session.store.blob_begin(user, frame.hash, frame.size, quota)
    if begun.stored:
        offset = begun.size
    else:
        if begun.new:  # a partial upload forgotten since is stale
            await files.discard(user, frame.hash)
        offset = await files.received(user, frame.hash)
        if offset >= begun.size:  # a complete upload that failed to publish: start over
            await files.discard(user, frame.hash)
            offset = 0
    return BlobStatus(id=frame.id, hash=frame.hash, offset=offset, size=begun.size)


@HANDLERS.on(BlobChunk)
async def blob_chunk(session: Session, frame: BlobChunk) -> Answer:
    user = check_authenticated(session)
    files = _blob_files(session)
    size = await session.store.blob_upload(user, frame.hash)
    if size is None:
        stored = await session.store.blob_size(frame.hash)
        if stored is not None:  # e.g. a retried last chunk: already complete
            return BlobStatus(id=frame.id, hash=frame.hash, offset=stored, size=stored)
        raise ProtocolError(ErrorCode.PROTOCOL, "no upload of this blob: send blob_begin first")
    async with files.upload_lock(user, frame.hash):
        have = await files.received(user, frame.hash)
        if frame.offset != have:
            raise ProtocolError(
                ErrorCode.PROTOCOL, f"chunk at offset {frame.offset}; the relay has {have} bytes"
            )
        if have + len(frame.data) > size:
            raise ProtocolError(ErrorCode.PROTOCOL, f"the chunk goes past the blob's size {size}")
        offset = await files.append(user, frame.hash, frame.data)
        if offset < size:
            return BlobStatus(id=frame.id, hash=frame.hash, offset=offset, size=size)
        if not await files.publish(user, frame.hash):
            await session.store.blob_abort(user, frame.hash)
            raise ProtocolError(
                ErrorCode.HASH_MISMATCH,
                "the uploaded bytes do not hash to the blob id; the upload was discarded",
            )
        await session.store.blob_commit(user, frame.hash, size)
    return BlobStatus(id=frame.id, hash=frame.hash, offset=size, size=size)


@HANDLERS.on(BlobGet)
async def blob_get(session: Session, frame: BlobGet) -> Answer:
    check_authenticated(session)
    files = _blob_files(session)
    size = await session.store.blob_size(frame.hash)
    if size is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "no blob with this hash")
    if frame.offset > size:
        raise ProtocolError(ErrorCode.MALFORMED, f"offset {frame.offset} is past the end {size}")
    length = min(frame.length, size - frame.offset,
                 session.config.max_frame - _BLOB_DATA_OVERHEAD)
    try:
        data = await files.read(frame.hash, frame.offset, length)
    except FileNotFoundError:
        raise ProtocolError(ErrorCode.NOT_FOUND, "the blob's file is missing") from None
    return BlobData(id=frame.id, hash=frame.hash, offset=frame.offset, data=data, size=size)
