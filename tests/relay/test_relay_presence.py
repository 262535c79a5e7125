"""Presence: a user is online while a connection of theirs is subscribed; watchers get
pushes on each change, and only for the users they watch (and who have written to them:
presence is for contacts, see tests/relay/test_relay_trust.py)."""

from __future__ import annotations

import pytest

from tenchat.common.frames import Presence, PresenceState, Send, Stored, Subscribe, Watch
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, async_test, logged_in, msg_id, new_key

pytestmark = pytest.mark.slow


@async_test
async def test_presence_pushes_to_watchers(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, carol):
        for friend in (bob, carol):  # contacts of alice's: they have written to her
            stored = await friend.call(Send, to=alice.user, msg=msg_id(), body=b"hi",
                                         conv=True)
            assert isinstance(stored, Stored), stored
        state = await alice.call(Watch, users=[bob.user])
        assert isinstance(state, PresenceState) and state.online == []

        await bob.call(Subscribe)  # bob is online once subscribed
        push = await alice.next_push(Presence)
        assert (push.user, push.online) == (bob.user, True)
        await carol.call(Subscribe)  # not watched: no push
        await alice.no_push()

        # a second connection of bob's changes nothing; the last one leaving does
        assert bob.key is not None
        bob2 = await RelayClient.login(relay.url, bob.key, "test-relay")
        await bob2.call(Subscribe)
        await alice.no_push()
        await bob2.close()
        await alice.no_push()
        await bob.close()
        push = await alice.next_push(Presence)
        assert (push.user, push.online) == (bob.user, False)

        state = await alice.call(Watch, users=[bob.user, carol.user, new_key().verify_key.encode()])
        assert isinstance(state, PresenceState) and state.online == [carol.user]
        await alice.call(Watch, users=[])  # unwatch everything
        await carol.close()
        await alice.no_push()
