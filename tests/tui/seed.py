"""A home built directly (no relay): a fixed identity and a cache with known messages,
so screens look the same on every run (snapshots) and big histories load fast."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path

from tenchat.client.cache import DELIVERED, READ, SENT, Cache, MessageRow
from tenchat.client.keystore import Keystore, Secrets
from tenchat.common.crypto.keys import IdentityKey
from tests.conftest import PASSPHRASE

DEAD_RELAY = "ws://127.0.0.1:9"  # nothing listens: the app stays offline


def seed(name: str) -> bytes:
    return hashlib.blake2b(name.encode(), digest_size=32).digest()


def user(name: str) -> bytes:
    return IdentityKey.from_seed(seed(name)).public


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def mid(n: int, peer: str) -> bytes:
    return hashlib.blake2b(f"{peer}{n}".encode(), digest_size=16).digest()


CONVERSATION = [  # (peer, outgoing, text, time, status)
    ("dave", True, "ping", "2026-11-24 12:00", SENT),
    ("bob", False, "are we still on for tomorrow?", "2026-11-25 18:02", READ),
    ("bob", True, "yes — 10:00 at the **usual place**", "2026-11-25 18:04", READ),
    ("bob", False, "great. I'll bring the map: https://example.org/map", "2026-11-25 18:05",
     READ),
    ("carol", False, "did you see the release notes?", "2026-11-26 07:10", DELIVERED),
    ("bob", True, "and `coffee`, please", "2026-11-26 08:30", READ),
    ("bob", False, "of course ☕ — see you there. This line is long enough that it has to "
     "wrap at eighty columns, to show how wrapped text lines up under the first.",
     "2026-11-26 08:31", DELIVERED),
    ("bob", True, "👍", "2026-11-26 08:32", DELIVERED),
]


async def build(home: Path, *, messages: int = 0, handle: str = "alice") -> None:
    """Make ``home``: keystore (PASSPHRASE), contacts bob/carol/dave, the conversation above
    and, with ``messages``, that many more with bob (one transaction)."""
    secrets = Secrets(identity_seed=seed(handle), storage_key=seed(handle + "-storage"),
                      handle=handle, relay=DEAD_RELAY)
    cache = await Cache.open(home, secrets.storage_key)
    try:
        for i, name in enumerate(("bob", "carol", "dave")):
            await cache.remember_contact(user(name), name, 1_700_000_000_000 + i, added=True)
        if messages:
            base = ms("2026-10-01 00:00")
            await cache.insert_many([
                MessageRow(mid(i, "bulk"), user("bob"), i % 3 == 0,
                           f"history message number {i}", base + i * 30_000,
                           base + i * 30_000, READ)
                for i in range(messages)
            ])
        for n, (peer, out, text, when, status) in enumerate(CONVERSATION):
            row = MessageRow(mid(n, peer), user(peer), out, text, ms(when), ms(when), status)
            await cache.add_message(row, shown=True)
        await cache.commit()
    finally:
        await cache.close()
    Keystore.in_home(home).save(secrets, PASSPHRASE)


def build_sync(home: Path, **kwargs: object) -> Path:
    asyncio.run(build(home, **kwargs))  # type: ignore[arg-type]
    return home
