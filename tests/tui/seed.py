"""A home built directly (no relay): a fixed identity and a cache with known messages,
so screens look the same on every run (snapshots) and big histories load fast; and a
relay seeded with fixed profiles and posts (the social screens)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from tenchat.client.cache import DELIVERED, READ, SENT, Cache, MessageRow
from tenchat.client.groups import _dump
from tenchat.client.keystore import Keystore, Secrets
from tenchat.client.service import Client
from tenchat.common import frames as f
from tenchat.common import social as s
from tenchat.common.crypto.keys import IdentityKey
from tenchat.common.groups import ADMIN, GroupChange, GroupState, sign_change
from tests.conftest import PASSPHRASE, Cli
from tests.support.clients import People
from tests.support.relay import RelayProcess

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


GROUP = hashlib.blake2b(b"team", digest_size=16).digest()  # the group "Team"

GROUP_CHAT = [  # (author or None for us, text, time, extra MessageRow fields)
    ("bob", "standup moved to 09:30 tomorrow", "2026-11-26 09:00", {}),
    ("carol", "works for me", "2026-11-26 09:01", {"edited": True}),
    (None, "same here; I'll bring the notes", "2026-11-26 09:02", {"pinned": True}),
    ("carol", "oops, wrong group", "2026-11-26 09:03", {"deleted": True}),
    ("bob", "@alice can you share the agenda?", "2026-11-26 09:05", {"mention": True}),
    (None, "sure, posting it now", "2026-11-26 09:06", {"reply_to": 4}),
]


async def _build_group(cache: Cache, name: str = "Team") -> None:
    state = GroupState(GROUP)
    records = []
    for version, (actor, op, fields) in enumerate([
        ("alice", "create", {"name": name, "topic": "the weekly plan",
                             "members": [user("bob"), user("carol")]}),
        ("alice", "role", {"members": [user("bob")], "role": ADMIN}),
    ], start=1):
        key = IdentityKey.from_seed(seed(actor))
        change = GroupChange(group=GROUP, version=version, prev=state.head, actor=key.public,
                             at=ms("2026-11-20 10:00"), op=op, **fields)
        record = sign_change(change, key.sign)
        state.apply(record)
        records.append((version, record))
    await cache.groups.save(GROUP, _dump(state), records)
    for n, (author, text, when, extra) in enumerate(GROUP_CHAT):
        msg_id, sender = mid(n, "team"), user(author) if author else None
        reply_to = mid(extra["reply_to"], "team") if "reply_to" in extra else None
        row = MessageRow(msg_id, GROUP, author is None, text, ms(when), ms(when),
                         DELIVERED if author is None else READ, sender=sender,
                         reply_to=reply_to, mention=extra.get("mention", False))
        await cache.messages.add(row, shown=True)
        if extra.get("edited"):  # edits, deletes and pins happen after the message
            await cache.messages.edit(GROUP, msg_id, sender, True, text + " 👌")
        if extra.get("deleted"):
            await cache.messages.delete(GROUP, msg_id, sender, True)
        if extra.get("pinned"):
            await cache.messages.set_pinned(GROUP, msg_id, True)
    await cache.messages.react(GROUP, mid(0, "team"), user("carol"), "👍", False)
    await cache.messages.react(GROUP, mid(0, "team"), user("alice"), "👍", False)
    await cache.messages.react(GROUP, mid(0, "team"), user("alice"), "❤️", False)
    await cache.messages.record_receipts(GROUP, [mid(2, "team"), mid(5, "team")], user("bob"), READ)
    await cache.messages.record_receipts(GROUP, [mid(2, "team")], user("carol"), READ)


async def build(home: Path, *, messages: int = 0, handle: str = "alice",
                group: bool = False, group_name: str = "Team") -> None:
    """Make ``home``: keystore (PASSPHRASE), contacts bob/carol/dave, the conversation above
    and, with ``messages``, that many more with bob (one transaction); with ``group``, the
    group Team (latest, so it opens first) with the messages of GROUP_CHAT."""
    secrets = Secrets(identity_seed=seed(handle), storage_key=seed(handle + "-storage"),
                      handle=handle, relay=DEAD_RELAY)
    cache = await Cache.open(home, secrets.storage_key)
    try:
        async with cache.transaction():
            for i, name in enumerate(("bob", "carol", "dave")):
                await cache.contacts.remember(user(name), name, 1_700_000_000_000 + i, added=True)
            if messages:
                base = ms("2026-10-01 00:00")
                await cache.messages.insert_many([
                    MessageRow(mid(i, "bulk"), user("bob"), i % 3 == 0,
                               f"history message number {i}", base + i * 30_000,
                               base + i * 30_000, READ)
                    for i in range(messages)
                ])
            for n, (peer, out, text, when, status) in enumerate(CONVERSATION):
                row = MessageRow(mid(n, peer), user(peer), out, text, ms(when), ms(when), status)
                await cache.messages.add(row, shown=True)
            if group:
                await _build_group(cache, group_name)
    finally:
        await cache.close()
    Keystore.in_home(home).save(secrets, PASSPHRASE)


# --- a relay seeded with profiles and posts (the social screens) ----------------------------


POSTS = [  # (author, text, time)
    ("carol", "Release notes for 0.4 are out: stories, polls and a feed.", "2026-11-25 18:00"),
    ("bob", "Finished the garden shed today. Photos tomorrow, the light was gone.",
     "2026-11-26 08:15"),
    ("bob", "Coffee at the usual place at 10?", "2026-11-26 09:40"),
]


def post_id(n: int) -> bytes:
    return hashlib.blake2b(f"post{n}".encode(), digest_size=16).digest()


async def put_post(client: Client, n: int, text: str, when: str) -> None:
    """POSTS[n] with its fixed id and time (what `tenchat post` would give a fresh one)."""
    post = s.Post(author=client.user, id=post_id(n), created_at=ms(when), text=text)
    conn = await client.connection()
    await conn.request(f.PostPut, record=s.sign_post(post, client.identity.sign))


async def seed_social(cli: Cli, relay: RelayProcess, tmp_path: Path) -> None:
    """Four users in the CLI's homes (``cli.home(name)``, so the app and the CLI open
    them): profiles (alice's private, with an avatar), follows, dave's pending follow
    request, the POSTS, reactions and a comment. In this process, through the client core
    the CLI's commands call — a process per step took a minute on the 2-core machine."""
    people = People(cli.home("alice").parent, relay.url)
    try:
        alice, bob, carol, dave = await people("alice", "bob", "carol", "dave")
        by_name = {c.handle: c for c in (alice, bob, carol, dave)}
        await bob.social.set_profile(name="Bob Builder")
        await carol.social.set_profile(name="Carol Chen")
        avatar = tmp_path / "avatar.png"
        im = Image.new("RGB", (32, 32))
        im.putdata([(x * 8, 80, 255 - y * 8) for y in range(32) for x in range(32)])
        im.save(avatar)
        await alice.social.set_profile(
            name="Alice Liddell", bio="Curiouser and curiouser. Writes about tea parties.",
            avatar=avatar)
        for other in (bob, carol):
            await alice.social.follow(other.handle)
            await other.social.follow("alice")
        await alice.social.set_profile(private=True)  # later followers ask first
        await dave.social.follow("alice")
        for n, (author, text, when) in enumerate(POSTS):
            await put_post(by_name[author], n, text, when)
        await carol.social.follow("bob")
        latest = post_id(2).hex()
        for who, emoji in ((carol, "👍"), (alice, "👍"), (carol, "☕")):
            await who.sync()  # as `tenchat react-post` does: audience keys come as messages
            await who.social.react(latest, emoji)
        await carol.sync()
        await carol.social.comment(latest, "yes, see you there")
    finally:
        await people.close()
