"""Media blobs through a real relay: chunked upload, resume, ranged download, limits,
hash checks, and that the relay's disk holds only ciphertext."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenchat.common.crypto import media
from tenchat.common.frames import BlobBegin, BlobChunk, BlobData, BlobGet, BlobStatus, Error
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, assert_alive, async_test, logged_in, new_key

pytestmark = pytest.mark.slow

PIECE = 16 * 1024  # upload chunk: well within the test relay's 64 KiB max_frame
MAX_BLOB = 512 * 1024
QUOTA = 1024 * 1024


@pytest.fixture(scope="module")
def blob_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    proc = RelayProcess(
        tmp_path_factory.mktemp("relay") / "data",
        args=["--max-frame", str(64 * 1024), "--max-blob", str(MAX_BLOB),
              "--blob-quota", str(QUOTA)],
    )
    with proc:
        yield proc


def sealed(size: int) -> tuple[bytes, bytes, bytes]:
    """(plaintext, blob, hash) of a random file of ``size`` bytes."""
    plain = os.urandom(size)
    blob, mk = media.encrypt(plain)
    return plain, blob, mk.blob_hash


async def begin(c: RelayClient, h: bytes, size: int) -> BlobStatus:
    status = await c.call(BlobBegin, hash=h, size=size)
    assert isinstance(status, BlobStatus), status
    return status


async def upload(c: RelayClient, blob: bytes, h: bytes, start: int | None = None,
                 stop: int | None = None) -> BlobStatus:
    status = await begin(c, h, len(blob))
    offset = status.offset if start is None else start
    end = len(blob) if stop is None else stop
    while offset < end:
        status = await c.call(BlobChunk, hash=h, offset=offset,  # type: ignore[assignment]
                              data=blob[offset : min(offset + PIECE, end)])
        assert isinstance(status, BlobStatus), status
        offset = status.offset
    return status


async def download(c: RelayClient, h: bytes, length: int = PIECE) -> bytes:
    out = b""
    while True:
        data = await c.call(BlobGet, hash=h, offset=len(out), length=length)
        assert isinstance(data, BlobData), data
        out += data.data
        if len(out) >= data.size:
            return out


@async_test
async def test_upload_in_chunks_then_download_in_ranges(blob_relay: RelayProcess) -> None:
    plain = os.urandom(100_000)
    blob, mk = media.encrypt(plain)
    h = mk.blob_hash
    async with logged_in(blob_relay.url, 2) as (alice, bob):
        status = await begin(alice, h, len(blob))
        assert (status.offset, status.size) == (0, len(blob))
        status = await upload(alice, blob, h)
        assert status.offset == status.size == len(blob)
        # Anyone authenticated who knows the hash may read it (it is ciphertext).
        assert await download(bob, h) == blob
        assert await download(bob, h, length=10_000) == blob
        part = await bob.call(BlobGet, hash=h, offset=1000, length=500)
        assert isinstance(part, BlobData)
        assert (part.offset, part.data, part.size) == (1000, blob[1000:1500], len(blob))
        # Asking for more than a frame holds gets less, never too_large.
        big = await bob.call(BlobGet, hash=h, offset=0, length=10 * 2**20)
        assert isinstance(big, BlobData) and 0 < len(big.data) < 64 * 1024
        assert big.data == blob[: len(big.data)]
        # Already stored: a second begin (by anyone) says so at once.
        again = await begin(bob, h, len(blob))
        assert again.offset == again.size == len(blob)
        assert media.decrypt(await download(alice, h), mk.key, h) == plain


@async_test
async def test_resume_after_disconnect(blob_relay: RelayProcess) -> None:
    plain = os.urandom(90_000)
    blob, mk = media.encrypt(plain)
    h = mk.blob_hash
    key = new_key()
    first = await RelayClient.login(blob_relay.url, key)
    status = await upload(first, blob, h, stop=3 * PIECE)
    assert status.offset == 3 * PIECE
    await first.close()

    second = await RelayClient.login(blob_relay.url, key)
    try:
        status = await begin(second, h, len(blob))
        assert status.offset == 3 * PIECE  # resumes where the relay's file ends
        # Out of order, or a repeat of a received range: protocol, and nothing changes.
        err = await second.call(BlobChunk, hash=h, offset=0, data=blob[:PIECE])
        assert isinstance(err, Error) and err.error == "protocol", err
        err = await second.call(BlobChunk, hash=h, offset=4 * PIECE, data=blob[4 * PIECE:][:10])
        assert isinstance(err, Error) and err.error == "protocol", err
        status = await upload(second, blob, h)
        assert status.offset == len(blob)
        got = await download(second, h)
        assert media.decrypt(got, mk.key, h) == plain
        # A retried last chunk after completion is answered as complete.
        again = await second.call(BlobChunk, hash=h, offset=len(blob) - 1, data=blob[-1:])
        assert isinstance(again, BlobStatus) and again.offset == len(blob)
    finally:
        await second.close()


@async_test
async def test_chunks_need_a_begin_and_stay_within_size(blob_relay: RelayProcess) -> None:
    _, blob, h = sealed(1000)
    async with logged_in(blob_relay.url, 2) as (alice, bob):
        err = await alice.call(BlobChunk, hash=h, offset=0, data=blob)
        assert isinstance(err, Error) and err.error == "protocol", err
        await begin(alice, h, len(blob))
        err = await alice.call(BlobChunk, hash=h, offset=0, data=blob + b"x")
        assert isinstance(err, Error) and err.error == "protocol", err
        # Another identity's upload of the same hash is its own.
        err = await bob.call(BlobChunk, hash=h, offset=0, data=blob)
        assert isinstance(err, Error) and err.error == "protocol", err
        # Unknown blobs are not found; unfinished ones are not readable.
        err = await bob.call(BlobGet, hash=h, offset=0, length=10)
        assert isinstance(err, Error) and err.error == "not_found", err
        await assert_alive(alice, bob)


@async_test
async def test_size_and_quota_limits(blob_relay: RelayProcess) -> None:
    async with logged_in(blob_relay.url, 2) as (alice, bob):
        err = await alice.call(BlobBegin, hash=os.urandom(32), size=MAX_BLOB + 1)
        assert isinstance(err, Error) and err.error == "too_large", err
        # Two uploads in progress of MAX_BLOB each fill the 1 MiB quota; a third does not fit.
        await begin(alice, os.urandom(32), MAX_BLOB)
        await begin(alice, os.urandom(32), MAX_BLOB)
        err = await alice.call(BlobBegin, hash=os.urandom(32), size=1)
        assert isinstance(err, Error) and err.error == "quota_exceeded", err
        # Quota is per identity.
        await begin(bob, os.urandom(32), MAX_BLOB)
        await assert_alive(alice, bob)


@async_test
async def test_hash_mismatch_is_rejected_and_discarded(blob_relay: RelayProcess) -> None:
    _, blob, h = sealed(40_000)
    bad = bytearray(blob)
    bad[-5] ^= 1
    async with logged_in(blob_relay.url, 2) as (alice, bob):
        await begin(alice, h, len(blob))
        await alice.call(BlobChunk, hash=h, offset=0, data=bytes(bad[:PIECE]))
        await alice.call(BlobChunk, hash=h, offset=PIECE, data=bytes(bad[PIECE : 2 * PIECE]))
        err = await alice.call(BlobChunk, hash=h, offset=2 * PIECE, data=bytes(bad[2 * PIECE :]))
        assert isinstance(err, Error) and err.error == "hash_mismatch", err
        err = await bob.call(BlobGet, hash=h, offset=0, length=10)
        assert isinstance(err, Error) and err.error == "not_found", err
        # The upload starts over from 0, and the right bytes are then accepted.
        status = await begin(alice, h, len(blob))
        assert status.offset == 0
        assert (await upload(alice, blob, h)).offset == len(blob)
        await assert_alive(alice, bob)


@async_test
async def test_disk_holds_only_ciphertext(blob_relay: RelayProcess) -> None:
    marker = b"PLAINTEXT-MARKER-" * 4000
    blob, mk = media.encrypt(marker)
    async with logged_in(blob_relay.url, 1) as (alice,):
        await upload(alice, blob, mk.blob_hash)
    data_dir: Path = blob_relay.data_dir
    path = data_dir / "blobs" / mk.blob_hash.hex()[:2] / mk.blob_hash.hex()
    assert path.read_bytes() == blob
    for f in data_dir.rglob("*"):
        if f.is_file():
            assert b"PLAINTEXT-MARKER" not in f.read_bytes(), f
            assert mk.key not in f.read_bytes(), f
    with sqlite3.connect(data_dir / "relay.sqlite3") as db:
        row = db.execute("SELECT size FROM blobs WHERE hash = ?", (mk.blob_hash,)).fetchone()
    assert row == (len(blob),)
