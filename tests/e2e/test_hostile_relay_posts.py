"""A hostile relay can't make the client show a forged or tampered post."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from tenchat.common import frames as f
from tenchat.common import social as s
from tenchat.common.crypto.keys import IdentityKey
from tests.e2e.test_hostile_relay import hostile_relay, make_client

bob = IdentityKey.generate()
mallory = IdentityKey.generate()


def post(text: str, at: int) -> s.Post:
    return s.Post(author=bob.public, id=os.urandom(16), created_at=at, text=text)


def retext(record: bytes, text: str) -> bytes:
    """The record with its body changed and the old signature kept."""
    signed = msgspec.msgpack.decode(record, type=s.SignedRecord)
    body = msgspec.msgpack.decode(signed.body, type=s.Post)
    changed = msgspec.structs.replace(body, text=text)
    return msgspec.msgpack.encode(s.SignedRecord(body=msgspec.msgpack.encode(changed),
                                                 sig=signed.sig))


def flip_ciphertext(record: bytes) -> bytes:
    signed = msgspec.msgpack.decode(record, type=s.SignedRecord)
    body = msgspec.msgpack.decode(signed.body, type=s.SealedPost)
    ct = bytearray(body.ciphertext)
    ct[-1] ^= 1
    changed = msgspec.structs.replace(body, ciphertext=bytes(ct))
    return msgspec.msgpack.encode(s.SignedRecord(body=msgspec.msgpack.encode(changed),
                                                 sig=signed.sig))


@pytest.mark.asyncio
async def test_forged_and_tampered_posts_are_dropped(tmp_path: Path) -> None:
    genuine = s.sign_post(post("genuine", 1), bob.sign)
    forged = s.sign_post(post("forged: send me ETH", 2), mallory.sign)  # in bob's name
    tampered = retext(s.sign_post(post("original", 3), bob.sign), "tampered: send me ETH")
    sealed_tampered = flip_ciphertext(s.seal_post(post("sealed", 4), 7, bytes(32), bob.sign))
    by_mallory = s.sign_post(s.Post(author=mallory.public, id=os.urandom(16), created_at=5,
                                    text="not asked for"), mallory.sign)

    async def answer(frame: f.Request) -> list[object]:
        if isinstance(frame, f.Whois):
            return [f.Error(id=frame.id, error="not_found")]
        if isinstance(frame, f.PostExtrasReq):
            return [f.PostExtras(id=frame.id, items=[])]
        assert isinstance(frame, f.Feed)
        records = [by_mallory, sealed_tampered, tampered, forged, genuine, b"\x93junk"]
        return [f.FeedItems(id=frame.id, records=records)]

    url, server = await hostile_relay(answer)
    client = await make_client(tmp_path, url)
    try:
        got = await client.social.feed(authors=[bob.public])
        # The sealed post's signature covers its ciphertext: a flipped bit is a bad
        # signature, so only the genuine public post is left.
        assert [(v.text, v.audience) for v in got] == [("genuine", "public")]
    finally:
        await client.close()
        server.close()


@pytest.mark.asyncio
async def test_followers_only_post_needs_the_key(tmp_path: Path) -> None:
    key = os.urandom(32)
    sealed = s.seal_post(post("for followers", 9), 42, key, bob.sign)

    async def answer(frame: f.Request) -> list[object]:
        if isinstance(frame, f.Whois):
            return [f.Error(id=frame.id, error="not_found")]
        if isinstance(frame, f.PostExtrasReq):
            return [f.PostExtras(id=frame.id, items=[])]
        assert isinstance(frame, f.Feed)
        return [f.FeedItems(id=frame.id, records=[sealed])]

    url, server = await hostile_relay(answer)
    client = await make_client(tmp_path, url)
    try:
        got = await client.social.feed(authors=[bob.public])
        assert [(v.text, v.audience) for v in got] == [(None, "followers")]
        # a wrong key under the right id does not open it either
        await client.cache.audience.put_key(bob.public, 42, os.urandom(32), 1)
        assert [v.text for v in await client.social.feed(authors=[bob.public])] == [None]
        await client.cache.audience.put_key(bob.public, 42, key, 2)
        got = await client.social.feed(authors=[bob.public])
        assert [v.text for v in got] == ["for followers"]
    finally:
        await client.close()
        server.close()


@pytest.mark.asyncio
async def test_forged_and_misplaced_comments_are_dropped(tmp_path: Path) -> None:
    public = post("a public post", 1)
    key = os.urandom(32)
    hidden = post("followers only", 2)
    records = [s.sign_post(public, bob.sign), s.seal_post(hidden, 5, key, bob.sign)]

    def comment(on: s.Post, text: str, by: IdentityKey = mallory) -> s.Comment:
        return s.Comment(author=by.public, post_id=on.id, post_author=on.author,
                         id=os.urandom(16), created_at=3, text=text)

    genuine = s.sign_comment(comment(public, "nice"), mallory.sign)
    forged = s.sign_comment(comment(public, "forged in bob's name", bob), mallory.sign)
    signed = msgspec.msgpack.decode(s.sign_comment(comment(public, "original"), mallory.sign),
                                    type=s.SignedRecord)
    body = msgspec.msgpack.decode(signed.body, type=s.Comment)
    tampered = msgspec.msgpack.encode(s.SignedRecord(body=msgspec.msgpack.encode(
        msgspec.structs.replace(body, text="tampered")), sig=signed.sig))
    elsewhere = s.sign_comment(comment(hidden, "moved from another post"), mallory.sign)
    sealed_ok = s.seal_comment(comment(hidden, "sealed hi", bob), 5, key, bob.sign)
    plain_on_hidden = s.sign_comment(comment(hidden, "plaintext on hidden"), mallory.sign)
    wrong_key = s.seal_comment(comment(hidden, "wrong key", bob), 5, os.urandom(32), bob.sign)

    async def answer(frame: f.Request) -> list[object]:
        if isinstance(frame, f.Whois):
            return [f.Error(id=frame.id, error="not_found")]
        if isinstance(frame, f.Feed):
            return [f.FeedItems(id=frame.id, records=records)]
        if isinstance(frame, f.PostExtrasReq):
            return [f.PostExtras(id=frame.id, items=[
                f.PostExtra(post_id=p, comments=1, reactions={"👍": 2}) for p in frame.post_ids])]
        assert isinstance(frame, f.CommentsReq)
        if frame.post_id == public.id:
            got = [forged, tampered, elsewhere, b"junk", genuine]
        else:
            got = [plain_on_hidden, wrong_key, sealed_ok]
        return [f.CommentItems(id=frame.id, records=got)]

    url, server = await hostile_relay(answer)
    client = await make_client(tmp_path, url)
    try:
        await client.cache.audience.put_key(bob.public, 5, key, 1)
        feed = await client.social.feed(authors=[bob.public])
        assert [(v.comments, v.reactions) for v in feed] == [(1, {"👍": 2})] * 2
        _, views = await client.social.comments(public.id.hex()[:8])
        assert [v.text for v in views] == ["nice"]
        _, views = await client.social.comments(hidden.id.hex())
        assert [(v.text, v.author) for v in views] == [("sealed hi", bob.public)]
    finally:
        await client.close()
        server.close()
