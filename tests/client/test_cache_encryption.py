"""The cache encrypted at rest (SQLCipher, client/db.py): nothing readable in its files,
only the storage key opens it, and a plain cache from before is encrypted in place on the
first unlock, whole, with no plain copy left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tenchat.client import db as cache_db
from tenchat.client.cache import DELIVERED, FILENAME, Cache, MessageRow, cache_key

BOB = b"b" * 32
WORDS = ["quetzalcanary", "axolotlcanary", "pangolincanary"]


def home_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.iterdir()) if p.is_file())


async def fill(cache: Cache) -> None:
    async with cache.transaction():
        for i, word in enumerate(WORDS):
            await cache.messages.add(MessageRow(os.urandom(16), BOB, False, f"the {word}", i,
                                               i, DELIVERED), shown=True)


@pytest.mark.asyncio
async def test_an_encrypted_cache_shows_nothing_and_opens_with_its_key_only(
        tmp_path: Path) -> None:
    key = os.urandom(32)
    cache = await Cache.open(tmp_path, key)
    await fill(cache)
    assert not any(w.encode() in home_bytes(tmp_path) for w in WORDS)  # the WAL too
    assert [m.text for m, _ in await cache.search.messages("axolotlcanary", None, 5)] == [
        "the axolotlcanary"]
    await cache.close()
    assert not cache_db.is_plain(tmp_path / FILENAME)
    with pytest.raises(cache_db.cipher_module().DatabaseError):
        await Cache.open(tmp_path, os.urandom(32))  # another storage key
    cache = await Cache.open(tmp_path, key)
    assert [m.text for m in await cache.messages.history(BOB, 5)] == [f"the {w}" for w in WORDS]
    await cache.close()


@pytest.mark.asyncio
async def test_a_plain_cache_is_encrypted_in_place_on_first_unlock(tmp_path: Path) -> None:
    key = os.urandom(32)
    plain = await Cache.open(tmp_path, key, encrypted=False)  # as a home from before
    await fill(plain)
    await plain.close()
    assert cache_db.is_plain(tmp_path / FILENAME)
    assert all(w.encode() in home_bytes(tmp_path) for w in WORDS)  # what there was to hide

    cache = await Cache.open(tmp_path, key)
    assert [m.text for m in await cache.messages.history(BOB, 5)] == [f"the {w}" for w in WORDS]
    assert [m.text for m, _ in await cache.search.messages("pangolin", None, 5)] == [
        "the pangolincanary"]  # the search index came along
    await cache.close()
    assert not cache_db.is_plain(tmp_path / FILENAME)
    assert not any(p.name.endswith((".plain", ".encrypting")) for p in tmp_path.iterdir())
    assert not any(w.encode() in home_bytes(tmp_path) for w in WORDS)


def test_a_stray_plain_copy_from_a_crash_is_zeroed_at_the_next_unlock(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    stray = tmp_path / (FILENAME + ".plain")
    stray.write_bytes(b"SQLite format 3\x00 the quetzalcanary")
    assert not cache_db.encrypt_in_place(path, cache_key(os.urandom(32)))  # nothing plain
    assert not stray.exists()
