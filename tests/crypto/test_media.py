"""Media blobs: secretstream sealing, content addressing, and every way opening fails."""

from __future__ import annotations

import io
import os

import msgspec
import pytest

from tenchat.common.crypto import media
from tenchat.common.crypto.errors import (
    BlobHashMismatch,
    DecryptionFailed,
    InvalidChunk,
    MediaError,
    TruncatedBlob,
)
from tenchat.common.crypto.media import CHUNK, CHUNK_OVERHEAD, HEADER_LEN

SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 12345]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(size: int) -> None:
    data = os.urandom(size)
    blob, mk = media.encrypt(data)
    assert mk.size == size
    assert len(blob) == mk.blob_size == media.sealed_size(size)
    assert mk.blob_hash == media.blob_hash(blob)
    assert media.decrypt(blob, mk.key, mk.blob_hash, size=size) == data


def test_stream_round_trip_through_files(tmp_path: os.PathLike[str]) -> None:
    data = os.urandom(5 * CHUNK + 7)
    src, sealed, out = (os.path.join(tmp_path, n) for n in ("src", "sealed", "out"))
    with open(src, "wb") as fh:
        fh.write(data)
    with open(src, "rb") as r, open(sealed, "wb") as w:
        mk = media.encrypt_stream(r, w)
    with open(sealed, "rb") as r, open(out, "wb") as w:
        assert media.decrypt_stream(r, w, mk.key, mk.blob_hash) == len(data)
    with open(out, "rb") as fh:
        assert fh.read() == data
    with open(sealed, "rb") as fh:
        assert data[:64] not in fh.read()


def test_fresh_key_and_hash_per_file() -> None:
    data = b"same bytes" * 100
    blob1, mk1 = media.encrypt(data)
    blob2, mk2 = media.encrypt(data)
    assert mk1.key != mk2.key and mk1.blob_hash != mk2.blob_hash and blob1 != blob2


def test_chunks_are_the_documented_size() -> None:
    data = os.urandom(2 * CHUNK + 5)
    blob, _ = media.encrypt(data)
    assert len(blob) == HEADER_LEN + 2 * (CHUNK + CHUNK_OVERHEAD) + 5 + CHUNK_OVERHEAD


def _reseal(blob: bytes) -> bytes:
    """The id of modified bytes, as an attacker who also swaps the reference would give."""
    return media.blob_hash(blob)


@pytest.mark.parametrize("where", [HEADER_LEN + 3, HEADER_LEN + CHUNK + 20, -1])
def test_tampered_chunk_rejected(where: int) -> None:
    blob, mk = media.encrypt(os.urandom(2 * CHUNK + 100))
    bad = bytearray(blob)
    bad[where] ^= 0x01
    with pytest.raises(InvalidChunk):
        media.decrypt(bytes(bad), mk.key, _reseal(bytes(bad)))
    assert issubclass(InvalidChunk, DecryptionFailed)


def test_hash_mismatch_rejected_before_decrypting() -> None:
    blob, mk = media.encrypt(b"hello")
    bad = bytearray(blob)
    bad[-1] ^= 0x80
    out = io.BytesIO()
    with pytest.raises(BlobHashMismatch):
        media.decrypt_stream(io.BytesIO(bytes(bad)), out, mk.key, mk.blob_hash)
    assert out.getvalue() == b""  # nothing written: the hash is checked first
    with pytest.raises(BlobHashMismatch):
        media.decrypt(blob, mk.key, bytes(32))


def test_wrong_key_rejected() -> None:
    blob, mk = media.encrypt(b"secret")
    with pytest.raises(InvalidChunk):
        media.decrypt(blob, os.urandom(32), mk.blob_hash)
    with pytest.raises(MediaError):
        media.decrypt(blob, b"short", mk.blob_hash)


@pytest.mark.parametrize(
    "cut",
    [
        HEADER_LEN + CHUNK + CHUNK_OVERHEAD,  # at a chunk boundary: the final chunk dropped
        HEADER_LEN + 10,  # inside the first chunk
        HEADER_LEN,  # header only
        5,  # inside the header
    ],
)
def test_truncated_stream_rejected(cut: int) -> None:
    blob, mk = media.encrypt(os.urandom(2 * CHUNK + 100))
    short = blob[:cut]
    with pytest.raises((TruncatedBlob, InvalidChunk)):
        media.decrypt(short, mk.key, _reseal(short))


def test_truncation_at_chunk_boundary_is_named() -> None:
    blob, mk = media.encrypt(os.urandom(2 * CHUNK + 100))
    short = blob[: HEADER_LEN + 2 * (CHUNK + CHUNK_OVERHEAD)]
    with pytest.raises(TruncatedBlob):
        media.decrypt(short, mk.key, _reseal(short))


def test_trailing_bytes_rejected() -> None:
    blob, mk = media.encrypt(b"x" * 10)
    longer = blob + b"\x00"
    # A short final chunk absorbs the extra byte and fails its MAC.
    with pytest.raises(InvalidChunk):
        media.decrypt(longer, mk.key, _reseal(longer))
    # After a full-size final chunk, the extra bytes are read as bytes after the end.
    blob, mk = media.encrypt(b"y" * CHUNK)
    longer = blob + b"\x00"
    with pytest.raises(TruncatedBlob):
        media.decrypt(longer, mk.key, _reseal(longer))


def test_announced_size_checked() -> None:
    blob, mk = media.encrypt(b"abc")
    with pytest.raises(MediaError):
        media.decrypt(blob, mk.key, mk.blob_hash, size=4)


def test_media_ref_round_trips_msgpack() -> None:
    _, mk = media.encrypt(b"pic")
    ref = media.MediaRef(hash=mk.blob_hash, key=mk.key, size=mk.size, mime="image/png",
                         name="a.png", width=3, height=4)
    raw = msgspec.msgpack.encode(ref)
    assert msgspec.msgpack.decode(raw, type=media.MediaRef) == ref
    assert ref.blob_size == mk.blob_size
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(msgspec.msgpack.encode({"hash": b"x", "key": mk.key, "size": 1}),
                               type=media.MediaRef)


class _Trickle(io.BytesIO):
    """A reader that returns at most 1000 bytes per read, as a pipe or socket may."""

    def read(self, n: int | None = -1) -> bytes:
        return super().read(1000 if n is None or n < 0 else min(n, 1000))


def test_short_reads_are_read_to_full_chunks() -> None:
    data = os.urandom(2 * CHUNK + 7)
    sealed = io.BytesIO()
    mk = media.encrypt_stream(_Trickle(data), sealed)
    blob = sealed.getvalue()
    assert len(blob) == media.sealed_size(len(data))  # chunks of CHUNK, not of 1000
    out = io.BytesIO()
    assert media.decrypt_stream(_Trickle(blob), out, mk.key, mk.blob_hash) == len(data)
    assert out.getvalue() == data


def test_a_short_chunk_that_is_not_final_is_a_cut() -> None:
    import nacl.bindings as b

    key = os.urandom(32)
    state = b.crypto_secretstream_xchacha20poly1305_state()
    header = b.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    chunk = b.crypto_secretstream_xchacha20poly1305_push(
        state, b"ten bytes!", None, b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
    blob = header + chunk  # authentic, but the stream never ends with TAG_FINAL
    with pytest.raises(TruncatedBlob, match="before its final chunk"):
        media.decrypt(blob, key, media.blob_hash(blob))


def test_keys_and_sizes_are_checked() -> None:
    with pytest.raises(MediaError):
        media.encrypt(b"x", key=bytes(31))
    with pytest.raises(MediaError):
        media.decrypt(b"x" * 100, bytes(31), bytes(32))
    with pytest.raises(ValueError):
        media.sealed_size(-1)
    assert media.sealed_size(0) == HEADER_LEN + CHUNK_OVERHEAD  # one (empty, final) chunk
