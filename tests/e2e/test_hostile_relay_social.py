"""A hostile relay can't make the client show a forged or tampered profile, nor a forged
follower."""

from __future__ import annotations

import asyncio
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
def test_forged_profile_is_refused(tmp_path: Path, record: bytes) -> None:
    async def answer(frame: f.Request) -> list[object]:
        assert isinstance(frame, f.ProfileGet)
        return [f.ProfileInfo(id=frame.id, record=record)]

    async def main() -> None:
        url, server = await hostile_relay(answer)
        client = await make_client(tmp_path, url)
        try:
            with pytest.raises(SocialError, match="nothing is shown"):
                await client.social.fetch_profile(bob.public)
        finally:
            await client.close()
            server.close()

    asyncio.run(main())


def test_genuine_profile_is_shown(tmp_path: Path) -> None:
    async def answer(frame: f.Request) -> list[object]:
        assert isinstance(frame, f.ProfileGet)
        return [f.ProfileInfo(id=frame.id, record=genuine)]

    async def main() -> None:
        url, server = await hostile_relay(answer)
        client = await make_client(tmp_path, url)
        try:
            got = await client.social.fetch_profile(bob.public)
            assert got is not None and got.display_name == "Bob"
        finally:
            await client.close()
            server.close()

    asyncio.run(main())


def test_forged_followers_are_dropped(tmp_path: Path) -> None:
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

    async def main() -> None:
        url, server = await hostile_relay(answer)
        client = await make_client(tmp_path, url)
        try:
            got = await client.social._list(bob.public, "followers")
            assert [v.user for v in got] == [carol.public]
        finally:
            await client.close()
            server.close()

    asyncio.run(main())
