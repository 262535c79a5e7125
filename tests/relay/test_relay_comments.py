"""Comments and reactions against a real relay: signatures, authorship and the post checked;
a reaction replaces the same author's one with that emoji; counts and pages."""

from __future__ import annotations

import os

import pytest

from tenchat.common import social
from tenchat.common.frames import (
    CommentItems,
    CommentPut,
    CommentsReq,
    Error,
    Ok,
    PostExtras,
    PostExtrasReq,
    PostPut,
    ReactPut,
)
from tests.relay.test_relay_posts import post
from tests.relay.test_relay_social import signer
from tests.support.wsclient import RelayClient, async_test, logged_in

pytestmark = pytest.mark.slow


def comment(c: RelayClient, on: social.Post, text: str, by: RelayClient | None = None) -> bytes:
    rec = social.Comment(author=c.user, post_id=on.id, post_author=on.author,
                         id=os.urandom(16), created_at=1, text=text)
    return social.sign_comment(rec, signer(by or c))


def react(c: RelayClient, on: social.Post, emoji: str, at: int, removed: bool = False) -> bytes:
    return social.sign_reaction(social.Reaction(
        author=c.user, post_id=on.id, post_author=on.author, emoji=emoji, created_at=at,
        removed=removed), signer(c))


@async_test
async def test_comments_reactions_and_counts(relay) -> None:  # type: ignore[no-untyped-def]
    async with logged_in(relay.url, 3) as (alice, bob, carol):
        record = post(alice, "hello")
        p = social.open_post(record)
        assert isinstance(p, social.Post)
        assert isinstance(await alice.call(PostPut, record=record), Ok)
        # forged, someone else's, a wrong post author, an unknown post
        res = await bob.call(CommentPut, record=comment(bob, p, "x", by=carol))
        assert isinstance(res, Error) and res.error == "bad_signature"
        res = await bob.call(CommentPut, record=comment(carol, p, "x"))
        assert isinstance(res, Error) and res.error == "forbidden"
        wrong = social.Post(author=bob.user, id=p.id, created_at=1)
        res = await bob.call(CommentPut, record=comment(bob, wrong, "x"))
        assert isinstance(res, Error) and res.error == "not_found"
        ghost = social.Post(author=alice.user, id=os.urandom(16), created_at=1)
        res = await bob.call(ReactPut, record=react(bob, ghost, "👍", 1))
        assert isinstance(res, Error) and res.error == "not_found"

        records = [comment(bob, p, f"c{i}") for i in range(3)] + [comment(carol, p, "c3")]
        for r in records:
            assert isinstance(await (carol if r is records[-1] else bob).call(
                CommentPut, record=r), Ok)
        assert isinstance(await bob.call(CommentPut, record=records[0]), Ok)  # idempotent
        page = await alice.call(CommentsReq, post_id=p.id, limit=3)
        assert isinstance(page, CommentItems) and page.more
        assert page.records == records[::-1][:3]
        last = social.open_comment(page.records[-1]).id
        rest = await alice.call(CommentsReq, post_id=p.id, before=last)
        assert isinstance(rest, CommentItems) and rest.records == records[:1]

        for c, emoji, at in ((bob, "👍", 1), (bob, "👍", 2), (bob, "🎉", 1), (carol, "👍", 1)):
            assert isinstance(await c.call(ReactPut, record=react(c, p, emoji, at)), Ok)
        # an older record does not undo a newer one; a removal deletes
        assert isinstance(await bob.call(ReactPut, record=react(bob, p, "👍", 1, True)), Ok)
        assert isinstance(await carol.call(ReactPut, record=react(carol, p, "👍", 5, True)), Ok)
        other = os.urandom(16)
        got = await bob.call(PostExtrasReq, post_ids=[p.id, other])
        assert isinstance(got, PostExtras)
        assert [(e.post_id, e.comments, e.reactions) for e in got.items] == [
            (p.id, 4, {"👍": 1, "🎉": 1}), (other, 0, {})]
