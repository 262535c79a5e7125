"""client.stories without a relay: the cache alone, and expired stories dropped from it
by the client's own clock (an injected clock, moved by the test)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tenchat.common import stories as st
from tenchat.common.crypto.keys import IdentityKey
from tests.e2e.test_hostile_relay import make_client

KEY = os.urandom(32)


@pytest.mark.asyncio
async def test_offline_list_uses_the_cache_and_drops_expired(tmp_path: Path) -> None:
    offset = [0]
    bob = IdentityKey.generate()
    now = time.time_ns() // 1_000_000
    short = st.Story(author=bob.public, id=os.urandom(16), posted_at=now - 3600_000,
                     expires_at=now + 60_000, text="going soon")
    long = st.Story(author=bob.public, id=os.urandom(16), posted_at=now,
                    expires_at=now + st.STORY_TTL_MS, text="fresh")

    client = await make_client(tmp_path / "home", "ws://127.0.0.1:9")  # nothing there
    client.clock = lambda: time.time_ns() // 1_000_000 + offset[0]  # the injected clock
    try:
        async with client.cache.transaction():
            await client.cache.audience.put_key(bob.public, 1, KEY, 0)
            for story in (short, long):
                rec = st.seal_story(story, st.FOLLOWERS, 1, KEY, bob.sign)
                await client.cache.stories.put(story.id, story.author, story.posted_at,
                                             story.expires_at, rec)
        got = await client.stories.stories()
        assert [v.text for v in got] == ["fresh", "going soon"]  # newest first
        assert not any(v.seen for v in got)
        offset[0] = 120_000  # two minutes on: the short one has expired
        got = await client.stories.stories()
        assert [v.text for v in got] == ["fresh"]
        async with client.cache._db.execute("SELECT count(*) FROM stories") as cur:
            assert await cur.fetchone() == (1,)
    finally:
        await client.close()
