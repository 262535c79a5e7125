"""What one device of an account decides about its followers, close friends and sticker
packs reaches its other devices (issue 16), real clients on a real relay process: a
follower removed on one device is removed on all and the audience key rotates on all; an
approval made on another device clears a denial; a close friend taken off on one device
can't open a story posted from another; a pack installed on one is installed on all."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tenchat.client.service import Client
from tests.client.test_devices_live import link
from tests.support.clients import PASSPHRASE, People

pytestmark = pytest.mark.slow


@pytest.mark.asyncio
async def test_a_follower_removed_on_one_device_is_removed_on_all(people: People) -> None:
    alice1, bob, carol = await people("alice", "bob", "carol")
    alice2 = await link(people, alice1, "laptop")
    await bob.social.follow("alice")
    await carol.social.follow("alice")
    await alice1.social.post("for my followers", audience="followers")
    await alice2.sync()  # the sync copies: the key, and that bob and carol got it
    first = await alice1.cache.audience.current_key(alice1.user)
    assert first is not None
    assert await alice2.cache.audience.members() == {bob.user: first.key_id,
                                                      carol.user: first.key_id}

    await alice1.social.remove_follower("carol")  # the key rotates: only bob gets it
    await alice2.sync()
    assert carol.user in await alice2.social.removed()
    second = await alice2.cache.audience.current_key(alice1.user)
    assert second is not None and second.key_id != first.key_id
    assert await alice2.cache.audience.members() == {bob.user: second.key_id}

    # a post from the laptop goes under the rotated key, without another rotation
    post = await alice2.social.post("carol can't read this", audience="followers")
    assert (await alice2.cache.audience.current_key(alice1.user)) == second
    await bob.sync()
    await carol.sync()
    assert "carol can't read this" in [p.text for p in await bob.social.feed(
        authors=[alice1.user])]
    assert await carol.cache.audience.key(alice1.user, second.key_id) is None
    assert post.id not in [p.id for p in await carol.social.feed(authors=[alice1.user])
                           if p.text is not None]


@pytest.mark.asyncio
async def test_the_last_follower_removed_rotates_the_key_on_every_device(people: People
                                                                        ) -> None:
    alice1, carol = await people("alice", "carol")
    alice2 = await link(people, alice1, "laptop")
    await carol.social.follow("alice")
    first = await alice1.social.sync_audience()
    await alice1.social.remove_follower("carol")  # nobody is left to send a new key to
    await alice2.sync()
    assert carol.user in await alice2.social.removed()
    again = await alice2.social.sync_audience()  # what the laptop's next post seals with
    assert again.key_id != first.key_id
    assert await carol.cache.audience.key(alice1.user, again.key_id) is None


@pytest.mark.asyncio
async def test_approvals_and_denials_reach_every_device(people: People) -> None:
    alice1, bob = await people("alice", "bob")
    alice2 = await link(people, alice1, "laptop")
    await alice1.social.set_profile(private=True)
    assert await bob.social.follow("alice") == "requested"
    await alice1.social.deny("bob")
    await alice2.sync()
    assert bob.user in await alice2.social.removed()

    assert await bob.social.follow("alice") == "requested"  # asks again
    await alice2.social.approve("bob")  # on the laptop, this time
    await alice1.sync()
    assert bob.user not in await alice1.social.removed()
    assert [v.user for v in await alice1.social.followers()] == [bob.user]


@pytest.mark.asyncio
async def test_close_friends_reach_every_device(people: People) -> None:
    alice1, bob, carol, dave = await people("alice", "bob", "carol", "dave")
    alice2 = await link(people, alice1, "laptop")
    await alice1.stories.add_close_friend("bob")
    await alice1.stories.add_close_friend("carol")
    await alice2.sync()
    key = await alice1.cache.stories.current_key(alice1.user)
    assert key is not None
    assert await alice2.cache.stories.close_friends() == {bob.user: key.key_id,
                                                          carol.user: key.key_id}

    await alice1.stories.remove_close_friend("carol")  # a new key, for bob only
    await alice1.stories.remove_close_friend("bob")  # the list is empty: no key is sent
    await alice2.sync()
    assert await alice2.cache.stories.close_friends() == {}
    await alice2.stories.add_close_friend("dave")  # from the laptop
    story = await alice2.stories.post_story("only dave", close_friends=True)
    laptop = await alice2.cache.stories.current_key(alice1.user)
    assert laptop is not None
    for removed in (bob, carol):  # neither holds the key the laptop posted under
        await removed.sync()
        assert await removed.cache.stories.key(alice1.user, laptop.key_id) is None
    await dave.sync()
    await dave.stories.refresh([alice1.user])
    assert (await dave.stories.open_story(story.id)).text == "only dave"
    await alice1.sync()  # and the phone learns of dave, with the laptop's key
    assert await alice1.cache.stories.close_friends() == {dave.user: laptop.key_id}


def _png(path: Path, colour: tuple[int, int, int]) -> Path:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(out, "PNG")
    path.write_bytes(out.getvalue())
    return path


@pytest.mark.asyncio
async def test_a_sticker_pack_installed_on_one_device_is_on_all(people: People,
                                                                tmp_path: Path) -> None:
    alice1, bob = await people("alice", "bob")
    alice2 = await link(people, alice1, "laptop")
    made = await bob.stickers.create_pack("Colours", [_png(tmp_path / "red.png", (200, 0, 0))])
    await alice1.stickers.install(made.link)
    own = await alice1.stickers.create_pack("Mine", [_png(tmp_path / "blue.png", (0, 0, 200))])
    await alice2.sync()
    await alice2.close()  # as `tenchat sync` would: closing lets the fetches land
    people.made.remove(alice2)
    async with await Client.unlock(alice2.home, people.relay_url, PASSPHRASE) as again:
        packs = await again.stickers.packs()
        assert sorted((p.id, p.name) for p in packs) == sorted([(made.id, "Colours"),
                                                                (own.id, "Mine")])
        assert all(p.stickers for p in packs)
