"""Authorisation, in one place: every operation on something of someone else's — their
queue, group, profile, post, story, upload — tried by the wrong identity over a real
relay is refused with a documented error code, changes nothing, and leaves the
connection serving. (Wallet bindings: tests/wallet/test_relay_wallets.py; replayed
authentication: tests/relay/test_relay_limits.py.)"""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from nacl.signing import SigningKey

from tenchat.common import social
from tenchat.common import stories as st
from tenchat.common.crypto.media import MediaRef
from tenchat.common.errors import ErrorCode
from tenchat.common.frames import (
    Ack,
    BlobBegin,
    BlobChunk,
    BlobStatus,
    Error,
    Fetch,
    GroupAck,
    GroupChangeReq,
    GroupHistory,
    GroupInfo,
    GroupSend,
    Messages,
    PostPut,
    ProfileGet,
    ProfileInfo,
    ProfileSet,
    Send,
    Stored,
    StoryPut,
)
from tests.support.groups import TestGroup
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, async_test, logged_in, msg_id

pytestmark = pytest.mark.slow

DOCUMENTED = {code.value for code in ErrorCode}


def signer(c: RelayClient) -> social.Sign:
    key = c.key
    assert isinstance(key, SigningKey)
    return lambda message: key.sign(message).signature


async def refused(c: RelayClient, code: str, frame_type: type, **fields: object) -> Error:
    reply = await c.call(frame_type, **fields)
    assert isinstance(reply, Error), (frame_type.__name__, reply)
    assert reply.error in DOCUMENTED and reply.error == code, (frame_type.__name__, reply)
    # The connection goes on serving.
    assert isinstance(await c.call(Fetch, user=c.user, after=0, limit=1), Messages)
    return reply


@async_test
async def test_the_wrong_identity_is_refused_everything(relay: RelayProcess) -> None:
    async with logged_in(relay.url, 3) as (alice, bob, mallory):
        now = int(time.time() * 1000)

        # --- someone else's queue -------------------------------------------------------
        stored = await bob.call(Send, to=alice.user, msg=msg_id(), body=b"for alice only")
        assert isinstance(stored, Stored)
        await refused(mallory, "forbidden", Fetch, user=alice.user, after=0, limit=10)
        await refused(mallory, "forbidden", Ack, seqs=[stored.seq])
        got = await alice.call(Fetch, user=alice.user, after=0, limit=10)
        assert isinstance(got, Messages)
        assert [m.body for m in got.items] == [b"for alice only"]  # still there

        # --- someone else's group -------------------------------------------------------
        g = TestGroup()
        await g.change(alice, "create", name="private", members=[bob.user])
        await refused(mallory, "forbidden", GroupSend, group=g.id, msg=msg_id(), body=b"x")
        await refused(mallory, "forbidden", GroupSend, group=g.id, msg=msg_id(), body=b"x",
                      eph=True)
        await refused(mallory, "forbidden", GroupInfo, group=g.id)
        await refused(mallory, "forbidden", GroupAck, group=g.id, upto=1)
        # mallory adding herself, signed by herself: not an admin of this group
        await refused(mallory, "forbidden", GroupChangeReq,
                      record=g.record(mallory.key, "add", members=[mallory.user]))
        # ...or replaying a genuine record signed by alice: not mallory's change to send
        await refused(mallory, "forbidden", GroupChangeReq,
                      record=g.record(alice.key, "add", members=[mallory.user]))
        assert isinstance(await bob.call(GroupInfo, group=g.id), GroupHistory)  # members: yes

        # --- someone else's profile -----------------------------------------------------
        mine = social.sign_profile(social.Profile(user=alice.user, updated_at=now,
                                                  display_name="Alice"), signer(alice))
        assert isinstance(await alice.call(ProfileSet, record=mine), ProfileInfo)
        forged = social.sign_profile(social.Profile(user=alice.user, updated_at=now + 1,
                                                    display_name="not alice"), signer(alice))
        await refused(mallory, "forbidden", ProfileSet, record=forged)  # alice's, sent by her
        held = await bob.call(ProfileGet, user=alice.user)
        assert isinstance(held, ProfileInfo) and held.record == mine

        # --- someone else's post --------------------------------------------------------
        post = social.sign_post(social.Post(author=alice.user, id=os.urandom(16),
                                            created_at=now, text="by alice"), signer(alice))
        await refused(mallory, "forbidden", PostPut, record=post)

        # --- someone else's story -------------------------------------------------------
        story = st.Story(author=alice.user, id=os.urandom(16), posted_at=now,
                         expires_at=now + 3_600_000, text="alice's day")
        record = st.seal_story(story, st.FOLLOWERS, 1, os.urandom(32), signer(alice))
        await refused(mallory, "forbidden", StoryPut, record=record)

        # --- someone else's upload ------------------------------------------------------
        data = os.urandom(4096)
        blob = hashlib.blake2b(data, digest_size=32).digest()
        begun = await alice.call(BlobBegin, hash=blob, size=len(data))
        assert isinstance(begun, BlobStatus) and begun.offset == 0
        # mallory can't write into alice's upload...
        await refused(mallory, "protocol", BlobChunk, hash=blob, offset=0, data=b"evil" * 8)
        # ...nor hang her own story's image on alice's blob (so it would expire with it).
        image = MediaRef(hash=blob, key=os.urandom(32), size=16, mime="image/png")
        own = st.Story(author=mallory.user, id=os.urandom(16), posted_at=now,
                       expires_at=now + 3_600_000, image=image)
        own_record = st.seal_story(own, st.FOLLOWERS, 1, os.urandom(32), signer(mallory))
        await refused(mallory, "not_found", StoryPut, record=own_record)
        # alice's upload is untouched: it completes and is stored under its hash.
        done = await alice.call(BlobChunk, hash=blob, offset=0, data=data)
        assert isinstance(done, BlobStatus) and done.offset == done.size == len(data)
