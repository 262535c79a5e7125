"""A hostile relay can't make the client show a forged or tampered profile, nor a forged
follower."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tenchat.client.social import SocialError
from tenchat.common import frames as f
from tenchat.common import social as s
from tenchat.common.crypto.keys import IdentityKey
from tests.e2e.test_hostile_relay import hostile_relay, make_client

bob = IdentityKey.generate()
mallory = IdentityKey.generate()
genuine = s.sign_profile(s.Profile(user=bob.public, updated_at=5, display_name="Bob"), bob.sign)


def tampered() -> bytes:
    signed = msgspec.msgpack.decode(genuine, type=s.SignedRecord)
    body = msgspec.msgpack.encode(s.Profile(user=bob.public, updated_at=5,
                                            display_name="Bob (send me ETH)"))
    return msgspec.msgpack.encode(s.SignedRecord(body=body, sig=signed.sig))


@pytest.mark.parametrize("record", [
    # signed by the relay's own key in bob's name
    s.sign_profile(s.Profile(user=bob.public, updated_at=5, display_name="Bob"), mallory.sign),
    tampered(),
    # validly signed, but mallory's profile given for bob
    s.sign_profile(s.Profile(user=mallory.public, updated_at=5), mallory.sign),
], ids=["forged", "tampered", "someone_else"])
@pytest.mark.asyncio
async def test_forged_profile_is_refused(tmp_path: Path, record: bytes) -> None:
    async def answer(frame: f.Request) -> list[object]:
        assert isinstance(frame, f.ProfileGet)
        return [f.ProfileInfo(id=frame.id, record=record)]

    url, server = await hostile_relay(answer)
    client = await make_client(tmp_path, url)
    try:
        with pytest.raises(SocialError, match="nothing is shown"):
            await client.social.fetch_profile(bob.public)
    finally:
        await client.close()
        server.close()


@pytest.mark.asyncio
async def test_genuine_profile_is_shown(tmp_path: Path) -> None:
    async def answer(frame: f.Request) -> list[object]:
        assert isinstance(frame, f.ProfileGet)
        return [f.ProfileInfo(id=frame.id, record=genuine)]

    url, server = await hostile_relay(answer)
    client = await make_client(tmp_path, url)
    try:
        got = await client.social.fetch_profile(bob.public)
        assert got is not None and got.display_name == "Bob"
    finally:
        await client.close()
        server.close()


@pytest.mark.asyncio
async def test_forged_followers_are_dropped(tmp_path: Path) -> None:
    carol = IdentityKey.generate()
    real = s.sign_follow(s.Follow(follower=carol.public, target=bob.public, at=1), carol.sign)
    forged = s.sign_follow(s.Follow(follower=carol.public, target=bob.public, at=2),
                           mallory.sign)
    elsewhere = s.sign_follow(s.Follow(follower=carol.public, target=mallory.public, at=3),
                              carol.sign)
    fake_approval = s.sign_approval(s.Approval(owner=bob.public, follower=mallory.public,
                                               at=4), mallory.sign)
    with_fake = s.sign_follow(s.Follow(follower=mallory.public, target=bob.public, at=4),
                              mallory.sign)

    async def answer(frame: f.Request) -> list[object]:
        if isinstance(frame, f.Whois):
            return [f.Error(id=frame.id, error="not_found")]
        assert isinstance(frame, f.FollowList)
        items = [f.FollowEntry(follow=real), f.FollowEntry(follow=forged),
                 f.FollowEntry(follow=elsewhere),
                 f.FollowEntry(follow=with_fake, approval=fake_approval)]
        return [f.FollowItems(id=frame.id, user=frame.user, kind=frame.kind, items=items)]

    url, server = await hostile_relay(answer)
    client = await make_client(tmp_path, url)
    try:
        got = await client.social._list(bob.public, "followers")
        assert [v.user for v in got] == [carol.public]
    finally:
        await client.close()
        server.close()


# --- a removed follower stays removed (issue 21, item 2) -------------------------------------


@pytest.mark.asyncio
async def test_a_replayed_approval_does_not_bring_a_removed_follower_back(tmp_path: Path) -> None:
    """alice (private) approved carol, then removed her. The relay replays carol's old
    follow and alice's old approval: alice's client must not hand carol the rotated
    audience key, nor list her as a follower. An approval alice signs later counts."""
    from tenchat.common.crypto.keys import make_signed_prekey
    from tenchat.common.identity import handle_message

    carol = IdentityKey.generate()
    carol_spk = make_signed_prekey(carol, 1)
    state: dict[str, object] = {}
    sent_to: list[bytes] = []

    url, server = None, None

    async def answer(frame: f.Request) -> list[object]:
        alice = state["alice"]
        if isinstance(frame, f.ProfileGet):
            profile = s.Profile(user=frame.user, updated_at=1, private=True)
            return [f.ProfileInfo(id=frame.id, record=s.sign_profile(
                profile, alice.identity.sign))]  # type: ignore[attr-defined]
        if isinstance(frame, f.FollowList):
            items = [f.FollowEntry(follow=state["follow"],  # type: ignore[arg-type]
                                   approval=state["approval"])]  # type: ignore[arg-type]
            if frame.kind == "requests":
                items = []
            return [f.FollowItems(id=frame.id, user=frame.user, kind=frame.kind,
                                  items=items)]
        if isinstance(frame, (f.Lookup, f.Whois)):
            return [f.HandleInfo(id=frame.id, handle="carol", user=carol.public,
                                 sig=carol.sign(handle_message("carol", carol.public)))]
        if isinstance(frame, f.FetchBundle):
            assert frame.user == carol.public
            return [f.Bundle(id=frame.id, user=carol.public, spk=f.SignedPrekey(
                key_id=1, pub=carol_spk.public, sig=carol_spk.sig))]
        if isinstance(frame, f.Send):
            sent_to.append(frame.to)
            return [f.Stored(id=frame.id, msg=frame.msg, seq=len(sent_to), at=1)]
        if isinstance(frame, f.ApproveReq):
            state["approval"] = frame.record  # an honest relay would serve this one
            return [f.Ok(id=frame.id)]
        # RemoveFollower: "done" (and the relay keeps serving the old records anyway)
        assert isinstance(frame, f.RemoveFollower), frame
        return [f.Ok(id=frame.id)]

    url, server = await hostile_relay(answer)
    alice = await make_client(tmp_path, url)
    state["alice"] = alice
    state["follow"] = s.sign_follow(s.Follow(follower=carol.public,
                                             target=alice.user, at=100), carol.sign)
    state["approval"] = s.sign_approval(s.Approval(owner=alice.user,
                                                   follower=carol.public, at=200),
                                        alice.identity.sign)
    try:
        k1 = await alice.social.sync_audience()
        assert sent_to == [carol.public]  # an approved follower gets the key
        assert await alice.cache.audience.members() == {carol.public: k1[0]}

        await alice.social.remove_follower("carol")
        k2 = await alice.cache.audience.current_key(alice.user)
        assert k2 is not None and k2[0] != k1[0]  # rotated
        assert sent_to == [carol.public]  # ...and not sent to carol
        assert carol.public not in await alice.cache.audience.members()
        again = await alice.social.sync_audience()  # any later check: the same
        assert again == k2 and sent_to == [carol.public]
        assert await alice.social.followers() == []

        # alice's own later approval is newer than her removal: carol is back.
        await alice.social.approve("carol")
        assert sent_to == [carol.public, carol.public]
        assert await alice.cache.audience.members() == {carol.public: k2[0]}
        assert [v.user for v in await alice.social.followers()] == [carol.public]
    finally:
        await alice.close()
        server.close()


# --- one's own privacy comes from the local copy (security review H2) -------------------------


@pytest.mark.asyncio
async def test_a_withheld_own_profile_does_not_make_a_private_account_public(
        tmp_path: Path) -> None:
    """alice is private and removed mallory. The relay then withholds alice's profile and
    serves a fresh, unapproved follow by mallory: alice's client must still treat its
    account as private (no audience key to mallory), and a bio change must not publish
    private=False."""
    import time

    from tenchat.common.crypto.keys import make_signed_prekey
    from tenchat.common.identity import handle_message

    m_spk = make_signed_prekey(mallory, 1)
    state: dict[str, object] = {"withhold": False, "follows": []}
    sent_to: list[bytes] = []
    published: list[s.Profile] = []

    async def answer(frame: f.Request) -> list[object]:
        if isinstance(frame, f.ProfileSet):
            published.append(s.open_profile(frame.record))
            state["profile"] = frame.record
            return [f.ProfileInfo(id=frame.id, record=frame.record)]
        if isinstance(frame, f.ProfileGet):
            if state["withhold"] or "profile" not in state:
                return [f.Error(id=frame.id, error="not_found")]
            return [f.ProfileInfo(id=frame.id, record=state["profile"])]  # type: ignore[arg-type]
        if isinstance(frame, f.FollowList):
            items = [f.FollowEntry(follow=r) for r in state["follows"]  # type: ignore[attr-defined]
                     ] if frame.kind == "followers" else []
            return [f.FollowItems(id=frame.id, user=frame.user, kind=frame.kind,
                                  items=items)]
        if isinstance(frame, (f.Lookup, f.Whois)):
            return [f.HandleInfo(id=frame.id, handle="mallory", user=mallory.public,
                                 sig=mallory.sign(handle_message("mallory",
                                                                 mallory.public)))]
        if isinstance(frame, f.FetchBundle):
            return [f.Bundle(id=frame.id, user=mallory.public, spk=f.SignedPrekey(
                key_id=1, pub=m_spk.public, sig=m_spk.sig))]
        if isinstance(frame, f.Send):
            sent_to.append(frame.to)
            return [f.Stored(id=frame.id, msg=frame.msg, seq=len(sent_to), at=1)]
        assert isinstance(frame, f.RemoveFollower), frame
        return [f.Ok(id=frame.id)]

    url, server = await hostile_relay(answer)
    alice = await make_client(tmp_path, url)
    try:
        await alice.social.set_profile(name="Alice", private=True)
        await alice.social.sync_audience()
        await alice.social.remove_follower("mallory")
        assert sent_to == []
        # the relay hides alice's profile; mallory signs a follow after the removal
        state["withhold"] = True
        now = time.time_ns() // 1_000_000 + 1000
        state["follows"] = [s.sign_follow(s.Follow(follower=mallory.public,
                                                   target=alice.user, at=now),
                                          mallory.sign)]
        await alice.social.sync_audience()
        assert sent_to == []  # no audience key for an unapproved follower
        assert await alice.social.followers() == []
        assert (await alice.social.profile()).profile.private is True  # type: ignore[union-attr]
        # changing the bio builds on the local copy: still private
        await alice.social.set_profile(bio="x")
        assert published[-1].private is True and published[-1].display_name == "Alice"
        assert published[-1].bio == "x"
    finally:
        await alice.close()
        server.close()
