"""The local cache: dedupe, statuses only move forward, receipts scoped to their peer,
secrets sealed at rest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tenchat.client.cache import DELIVERED, PENDING, READ, SENT, Cache, MessageRow
from tenchat.client.db import operational_errors
from tests.support.cache_file import UNDO_TO_13, open_cache_file

BOB, CAROL = b"b" * 32, b"c" * 32


@pytest.mark.asyncio
async def test_statuses_and_dedupe(tmp_path: Path) -> None:
    cache = await Cache.open(tmp_path, os.urandom(32))
    async with cache.transaction():
        mid = os.urandom(16)
        out = MessageRow(mid, BOB, True, "hi", 1, 1, PENDING)
        assert await cache.messages.add(out, shown=True)
        assert not await cache.messages.add(out, shown=True)  # same id: a duplicate
        await cache.outbox.add(mid, BOB, b"envelope", 1)
        await cache.outbox.done(mid, BOB)
        assert (await cache.messages.get(BOB, mid)).status == SENT  # type: ignore[union-attr]
        # a receipt from carol can't touch a message to bob
        assert await cache.messages.raise_status(CAROL, [mid], READ) == []
        assert await cache.messages.raise_status(BOB, [mid], READ) == [mid]
        # and a late "delivered" never moves it back
        assert await cache.messages.raise_status(BOB, [mid], DELIVERED) == []
        assert (await cache.messages.get(BOB, mid)).status == READ  # type: ignore[union-attr]
        assert await cache.outbox.items() == []
    await cache.close()


@pytest.mark.asyncio
async def test_unshown_messages_are_taken_once(tmp_path: Path) -> None:
    cache = await Cache.open(tmp_path, os.urandom(32))
    for i in range(3):
        await cache.messages.add(
            MessageRow(os.urandom(16), BOB, False, f"m{i}", i, i, DELIVERED), shown=False)
    assert [m.text for m in await cache.messages.take_unshown()] == ["m0", "m1", "m2"]
    assert await cache.messages.take_unshown() == []
    await cache.close()


@pytest.mark.asyncio
async def test_sessions_and_prekeys_sealed_at_rest(tmp_path: Path) -> None:
    key = os.urandom(32)
    cache = await Cache.open(tmp_path, key)
    async with cache.transaction():
        secret_state = b"ratchet-state-" + os.urandom(32)
        secret_prekey = os.urandom(32)
        await cache.sessions.save(BOB, None, secret_state, 1)
        await cache.prekeys.put("otk", 7, b"p" * 32, secret_prekey, 1)
    await cache.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert secret_state not in raw and secret_prekey not in raw
    cache = await Cache.open(tmp_path, key)
    assert [s for _, s in await cache.sessions.of(BOB)] == [secret_state]
    assert await cache.prekeys.private("otk", 7) == secret_prekey
    await cache.close()


@pytest.mark.asyncio
async def test_old_sessions_are_capped(tmp_path: Path) -> None:
    cache = await Cache.open(tmp_path, os.urandom(32))
    for i in range(5):
        await cache.sessions.save(BOB, None, b"s%d" % i, i)
    assert [s for _, s in await cache.sessions.of(BOB)] == [b"s4", b"s3", b"s2"]
    await cache.close()


@pytest.mark.asyncio
async def test_search_prefixes_newest_first_and_an_upgraded_cache_keeps_its_index(
    tmp_path: Path,
) -> None:
    key = os.urandom(32)
    cache = await Cache.open(tmp_path, key)
    async with cache.transaction():
        texts = ["meeting at noon", "a meeting moved", "meet me there", "a cat", "mee too"]
        for i, text in enumerate(texts):
            await cache.messages.add(
                MessageRow(os.urandom(16), BOB, False, text, i, i, DELIVERED), shown=True)

    async def found(query: str) -> list[str]:
        return [row.text for row, _ in await cache.search.messages(query, None, 10)]

    assert await found("mee") == ["mee too", "meet me there", "a meeting moved",
                                  "meeting at noon"]  # the last word is a prefix
    assert await found("a meet") == ["a meeting moved"]  # earlier words whole
    assert await found("me") == ["mee too", "meet me there", "a meeting moved",
                                 "meeting at noon"]  # 2 letters: the prefix index
    assert await found("a") == ["a cat", "a meeting moved"]  # one letter: the word
    await cache.close()

    # A cache from before the prefix indexes (schema 9): upgrading rebuilds the index
    # from the messages, so old messages are found too.

    from tenchat.client.cache import FILENAME

    db = open_cache_file(tmp_path / FILENAME, key)
    db.executescript("""
        DROP TABLE messages_fts;
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            text, content='messages', content_rowid='rowid',
            tokenize='unicode61 remove_diacritics 2');
        INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
        ALTER TABLE contacts DROP COLUMN previous_key;  -- and without migration 11's
        ALTER TABLE contacts DROP COLUMN key_change;
        DROP TABLE device_lists; DROP TABLE device_index;  -- and migration 13's
        DROP TABLE outbox_copies; DROP TABLE device_alerts;
    """ + UNDO_TO_13)
    db.execute("PRAGMA user_version=9")
    db.commit()
    db.close()
    cache = await Cache.open(tmp_path, key)
    assert await found("meet") == ["meet me there", "a meeting moved", "meeting at noon"]
    rows = await cache._db.execute_fetchall(
        "SELECT sql FROM sqlite_master WHERE name = 'messages_fts'")
    assert "prefix='2 3'" in next(iter(rows))[0]
    await cache.close()


@pytest.mark.asyncio
async def test_deleted_edited_and_expired_text_leaves_the_cache_files(tmp_path: Path) -> None:
    """secure_delete, the search index and the WAL: after a delete, an edit and an expiry
    the old words are in none of the cache's files (issue 12 item 14)."""
    gone = {"expired": "zyzzyvaexpiredquux", "deleted": "zyzzyvadeletedquux",
            "edited": "zyzzyvaeditedquux"}
    kept = "zyzzyvakeptquux"

    # A plain file, to read its pages: under encryption (the default) this still matters
    # to whoever holds the passphrase, who could otherwise read free pages.
    cache = await Cache.open(tmp_path, os.urandom(32), encrypted=False)
    ids = {}
    for i, (name, word) in enumerate([*gone.items(), ("kept", kept)]):
        ids[name] = os.urandom(16)
        # one transaction each: several index segments
        async with cache.transaction():
            await cache.messages.add(MessageRow(
                ids[name], BOB, True, f"the secret is {word} ok", i, i, SENT,
                expires_at=1000 if name == "expired" else 0), shown=True)
    async with cache.transaction():
        for i in range(50):  # and some ordinary traffic around them
            await cache.messages.add(MessageRow(os.urandom(16), BOB, False, f"filler {i}",
                                               100 + i, 100 + i, DELIVERED), shown=False)
    files = list(tmp_path.glob("cache.sqlite*"))
    assert all(w.encode() in b"".join(p.read_bytes() for p in files)
               for w in gone.values())  # the scan would see them

    async with cache.transaction():
        assert await cache.messages.purge_expired(2000) == [(BOB, ids["expired"])]
        assert await cache.messages.delete(BOB, ids["deleted"], None, False)
        assert await cache.messages.edit(BOB, ids["edited"], None, False, "nothing to see")

    data = b"".join(p.read_bytes() for p in tmp_path.glob("cache.sqlite*"))
    for name, word in gone.items():
        assert word.encode() not in data, name
        assert await cache.search.messages(word, None, 10) == []
    assert [m.id for m, _ in await cache.search.messages(kept, None, 10)] == [ids["kept"]]
    assert [m.text for m in await cache.messages.history(BOB, 3)][-1] == "filler 49"
    await cache.close()


@pytest.mark.asyncio
async def test_a_handle_moved_by_schema_11_goes_back_to_its_pinned_key(tmp_path: Path) -> None:
    """Security review H1: schema 11 moved a handle to whatever key the relay named; the
    upgrade puts it back on the pinned key and leaves the new key a pending change."""

    from tenchat.client.cache import FILENAME, KEY_CHANGED

    old, new = b"o" * 32, b"n" * 32

    key = os.urandom(32)
    cache = await Cache.open(tmp_path, key)
    await cache.close()
    db = open_cache_file(tmp_path / FILENAME, key)
    db.execute("INSERT INTO contacts (user, handle, created_at) VALUES (?, NULL, 1)", (old,))
    db.execute("INSERT INTO contacts (user, handle, created_at, previous_key, key_change) "
               "VALUES (?, 'alice', 2, ?, ?)", (new, old, KEY_CHANGED))
    db.executescript(UNDO_TO_13 + "DROP TABLE device_lists; DROP TABLE device_index;"
                     " DROP TABLE outbox_copies; DROP TABLE device_alerts;")  # 13's, 14's
    db.execute("PRAGMA user_version=11")  # schema 12 runs again
    db.commit()
    db.close()
    cache = await Cache.open(tmp_path, key)
    pinned = await cache.contacts.by_handle("alice")
    assert pinned is not None and pinned.user == old
    pending = await cache.contacts.pending_key(old)
    assert pending is not None and pending.user == new and pending.handle is None
    assert pending.claimed == "alice" and pending.needs_acceptance
    await cache.close()


@pytest.mark.asyncio
async def test_a_migration_that_fails_midway_leaves_the_previous_version_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The schema change and the user_version bump are one transaction: a crash between
    them (here: the migration's last statement fails after its first ran) leaves the
    cache at the previous version with none of the change, and the next start works."""
    from tenchat.client.cache import schema as cache_module

    key = os.urandom(32)
    await (await Cache.open(tmp_path, key)).close()
    current = len(cache_module.MIGRATIONS)
    broken = "CREATE TABLE half_done (a INTEGER);\nINSERT INTO no_such_table VALUES (1);"
    monkeypatch.setattr(cache_module, "MIGRATIONS", [*cache_module.MIGRATIONS, broken])
    with pytest.raises(operational_errors(), match="no_such_table"):
        await Cache.open(tmp_path, key)
    db = open_cache_file(tmp_path / "cache.sqlite", key)
    assert db.execute("PRAGMA user_version").fetchone() == (current,)
    assert db.execute("SELECT name FROM sqlite_master WHERE name='half_done'").fetchall() == []
    db.close()
    monkeypatch.undo()
    cache = await Cache.open(tmp_path, key)  # the next start: nothing to repair
    async with cache.transaction():
        await cache.settings.set("still", 1)
    assert await cache.settings.get("still") == 1
    await cache.close()


@pytest.mark.asyncio
async def test_a_poll_close_kept_for_a_poll_that_never_comes_is_forgotten(
        tmp_path: Path) -> None:
    from tenchat.client.cache.polls import EARLY_CLOSE_KEPT_MS

    cache = await Cache.open(tmp_path, os.urandom(32))
    poll, other = os.urandom(16), os.urandom(16)
    async with cache.transaction():
        await cache.polls.keep_early_close(BOB, poll, BOB, 1_000)
        await cache.polls.keep_early_close(BOB, poll, BOB, 1_000)  # redelivered: one row
        assert await cache.polls.closed_early(BOB, poll, BOB)
        assert not await cache.polls.closed_early(BOB, poll, CAROL)  # only its closer
        assert not await cache.polls.closed_early(CAROL, poll, BOB)  # only its conversation
        await cache.polls.keep_early_close(BOB, other, BOB, 1_000 + EARLY_CLOSE_KEPT_MS + 1)
        assert not await cache.polls.closed_early(BOB, poll, BOB)  # too old: forgotten
        await cache.polls.forget_early_closes(BOB, other)
        assert not await cache.polls.closed_early(BOB, other, BOB)
    await cache.close()
