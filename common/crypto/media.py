"""Encrypted attachments: a file sealed under a fresh random key, named by its hash.

A blob is libsodium's XChaCha20-Poly1305 *secretstream*: the 24-byte stream header,
then the file in chunks of :data:`CHUNK` plaintext bytes (the last one shorter, and
tagged ``TAG_FINAL``), each chunk followed by its 17 bytes of tag and MAC. The blob's
id is BLAKE2b-256 of those bytes, so the relay stores it content-addressed and a
reader checks it before decrypting. The key never reaches the relay: it travels in a
:class:`MediaRef` inside end-to-end content. See ``docs/crypto.md`` ("Media").

Pure: readers and writers are file-like objects the caller opens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from typing import Annotated, BinaryIO, Final

import msgspec
from nacl import bindings as b
from nacl.exceptions import CryptoError as NaclCryptoError

from .errors import BlobHashMismatch, InvalidChunk, MediaError, TruncatedBlob

__all__ = [
    "CHUNK", "HEADER_LEN", "CHUNK_OVERHEAD", "HASH_LEN", "KEY_LEN",
    "MediaKey", "MediaRef", "new_hasher", "blob_hash", "sealed_size",
    "encrypt_stream", "decrypt_stream", "verify_hash", "encrypt", "decrypt",
]

CHUNK: Final = 64 * 1024  # plaintext bytes per chunk; fixed by the format (v1)
HEADER_LEN: Final = b.crypto_secretstream_xchacha20poly1305_HEADERBYTES  # 24
CHUNK_OVERHEAD: Final = b.crypto_secretstream_xchacha20poly1305_ABYTES  # 17: tag + MAC
KEY_LEN: Final = b.crypto_secretstream_xchacha20poly1305_KEYBYTES  # 32
HASH_LEN: Final = 32  # BLAKE2b-256

_TAG_MESSAGE: Final = b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL: Final = b.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_READ: Final = 1024 * 1024  # bytes per read while hashing

Hash32 = Annotated[bytes, msgspec.Meta(min_length=HASH_LEN, max_length=HASH_LEN)]
Key32 = Annotated[bytes, msgspec.Meta(min_length=KEY_LEN, max_length=KEY_LEN)]


@dataclasses.dataclass(frozen=True, slots=True)
class MediaKey:
    """What sealing a file produced: the secret key and the public blob id and sizes."""

    key: bytes  # 32 random bytes; a secret, like a message key
    blob_hash: bytes  # BLAKE2b-256 of the whole blob: its id on the relay
    size: int  # plaintext bytes
    blob_size: int  # ciphertext bytes (header included) = sealed_size(size)


class MediaRef(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    """An attachment as it travels inside end-to-end content: where, and how to open it."""

    hash: Hash32  # the blob id (BLAKE2b-256 of the ciphertext)
    key: Key32  # the secretstream key — only ever inside encrypted content or sealed storage
    size: Annotated[int, msgspec.Meta(ge=0)]  # plaintext bytes
    mime: Annotated[str, msgspec.Meta(max_length=255)] = "application/octet-stream"
    name: Annotated[str, msgspec.Meta(max_length=255)] = ""
    width: Annotated[int, msgspec.Meta(ge=0)] | None = None  # images and video, if known
    height: Annotated[int, msgspec.Meta(ge=0)] | None = None

    @property
    def blob_size(self) -> int:
        return sealed_size(self.size)


def new_hasher() -> hashlib.blake2b:
    """The blob-id hash, to feed incrementally (the relay hashes uploads with it)."""
    return hashlib.blake2b(digest_size=HASH_LEN)


def blob_hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=HASH_LEN).digest()


def sealed_size(size: int) -> int:
    """The blob size of a ``size``-byte file: header, plus 17 bytes per chunk (at least one)."""
    if size < 0:
        raise ValueError("size must be >= 0")
    chunks = max(1, -(-size // CHUNK))
    return HEADER_LEN + size + chunks * CHUNK_OVERHEAD


def _read_full(reader: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at the end of the stream."""
    data = reader.read(n)
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = reader.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def encrypt_stream(reader: BinaryIO, writer: BinaryIO, *, key: bytes | None = None) -> MediaKey:
    """Seal everything ``reader`` yields into ``writer``, one chunk at a time.

    ``key`` is for tests; by default it is fresh from the OS's CSPRNG, and it must
    never be reused for another file.
    """
    key = os.urandom(KEY_LEN) if key is None else key
    if len(key) != KEY_LEN:
        raise MediaError(f"a media key is {KEY_LEN} bytes")
    hasher = new_hasher()
    state = b.crypto_secretstream_xchacha20poly1305_state()
    header = b.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    writer.write(header)
    hasher.update(header)
    blob_size, size = len(header), 0
    chunk = _read_full(reader, CHUNK)
    while True:
        # Read one chunk ahead, so the last one is known and gets TAG_FINAL.
        nxt = _read_full(reader, CHUNK) if len(chunk) == CHUNK else b""
        tag = _TAG_FINAL if not nxt else _TAG_MESSAGE
        sealed = b.crypto_secretstream_xchacha20poly1305_push(state, chunk, None, tag)
        writer.write(sealed)
        hasher.update(sealed)
        size += len(chunk)
        blob_size += len(sealed)
        if tag == _TAG_FINAL:
            break
        chunk = nxt
    return MediaKey(key=key, blob_hash=hasher.digest(), size=size, blob_size=blob_size)


def verify_hash(reader: BinaryIO, expected: bytes) -> int:
    """Hash ``reader`` to its end; BlobHashMismatch unless it is ``expected``. Its size."""
    hasher = new_hasher()
    total = 0
    while data := reader.read(_READ):
        hasher.update(data)
        total += len(data)
    if hasher.digest() != expected:
        raise BlobHashMismatch("the blob does not match its id")
    return total


def decrypt_stream(
    reader: BinaryIO, writer: BinaryIO, key: bytes, expected_hash: bytes,
    *, size: int | None = None,
) -> int:
    """Open a blob: check its hash, then every chunk, and that it ends with TAG_FINAL.

    ``reader`` must be seekable (it is read twice: hash, then decrypt). Plaintext is
    written to ``writer`` as chunks verify, so on an exception the caller must discard
    what was written (decrypt into a temporary file and rename it on success).
    ``size``, if given, is the plaintext size the sender announced. The bytes written.
    """
    if len(key) != KEY_LEN:
        raise MediaError(f"a media key is {KEY_LEN} bytes")
    start = reader.tell()
    verify_hash(reader, expected_hash)
    reader.seek(start)
    header = _read_full(reader, HEADER_LEN)
    if len(header) != HEADER_LEN:
        raise TruncatedBlob("the blob is shorter than its header")
    state = b.crypto_secretstream_xchacha20poly1305_state()
    try:
        b.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    except (NaclCryptoError, ValueError, TypeError):
        raise InvalidChunk("the stream header is invalid") from None
    written = 0
    while True:
        sealed = _read_full(reader, CHUNK + CHUNK_OVERHEAD)
        if not sealed:
            raise TruncatedBlob("the blob ends before its final chunk")
        try:
            chunk, tag = b.crypto_secretstream_xchacha20poly1305_pull(state, sealed, None)
        except (NaclCryptoError, ValueError, TypeError):
            raise InvalidChunk("a chunk does not authenticate") from None
        writer.write(chunk)
        written += len(chunk)
        if tag == _TAG_FINAL:
            break
        if len(sealed) != CHUNK + CHUNK_OVERHEAD:
            # Only the final chunk may be short; a short one without TAG_FINAL is a cut.
            raise TruncatedBlob("the blob ends before its final chunk")
    if reader.read(1):
        raise TruncatedBlob("bytes follow the final chunk")
    if size is not None and written != size:
        raise MediaError(f"the file has {written} bytes, not the {size} announced")
    return written


def encrypt(data: bytes, *, key: bytes | None = None) -> tuple[bytes, MediaKey]:
    """Seal ``data`` in memory: the blob and its key."""
    out = io.BytesIO()
    mk = encrypt_stream(io.BytesIO(data), out, key=key)
    return out.getvalue(), mk


def decrypt(blob: bytes, key: bytes, expected_hash: bytes, *, size: int | None = None) -> bytes:
    """Open a blob held in memory (see :func:`decrypt_stream`)."""
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, key, expected_hash, size=size)
    return out.getvalue()
