"""common.stories: the sealed story record — signature, lifetime, audience binding."""

from __future__ import annotations

import os

import msgspec
import pytest
from nacl.signing import SigningKey

from tenchat.common import stories as st
from tenchat.common.crypto.errors import DecryptionFailed
from tenchat.common.crypto.media import MediaRef
from tenchat.common.errors import ProtocolError
from tenchat.common.social import SignedRecord

KEY = os.urandom(32)


def _story(author: SigningKey, **kw: object) -> st.Story:
    fields: dict[str, object] = {"author": bytes(author.verify_key), "id": os.urandom(16),
                                 "posted_at": 1_000, "expires_at": 1_000 + st.STORY_TTL_MS,
                                 "text": "hello"}
    fields.update(kw)
    return st.Story(**fields)  # type: ignore[arg-type]


def _sign(key: SigningKey):  # type: ignore[no-untyped-def]
    return lambda m: key.sign(m).signature


def test_seal_open_round_trip_with_image() -> None:
    alice = SigningKey.generate()
    ref = MediaRef(hash=os.urandom(32), key=os.urandom(32), size=10, mime="image/png")
    story = _story(alice, image=ref)
    record = st.seal_story(story, st.CLOSE_FRIENDS, 7, KEY, _sign(alice))
    sealed = st.open_story(record)
    assert sealed.audience == "close_friends" and sealed.key_id == 7
    assert sealed.blob == ref.hash  # the relay learns the blob id, never its key
    assert b"hello" not in record and ref.key not in record
    assert st.open_sealed_story(sealed, KEY) == story
    with pytest.raises(DecryptionFailed):
        st.open_sealed_story(sealed, os.urandom(32))


def test_forged_and_changed_records_are_rejected() -> None:
    alice, mallory = SigningKey.generate(), SigningKey.generate()
    forged = st.seal_story(_story(alice), st.FOLLOWERS, 1, KEY, _sign(mallory))
    with pytest.raises(ProtocolError) as info:
        st.open_story(forged)
    assert info.value.code == "bad_signature"
    # a longer life than 24 h is refused even when signed
    long = st.seal_story(_story(alice, expires_at=1_000 + st.STORY_TTL_MS + 1), st.FOLLOWERS,
                         1, KEY, _sign(alice))
    with pytest.raises(ProtocolError) as info:
        st.open_story(long)
    assert info.value.code == "malformed"
    # an envelope re-signed with a moved audience no longer opens (AD binds it)
    record = st.seal_story(_story(alice), st.FOLLOWERS, 1, KEY, _sign(alice))
    signed = msgspec.msgpack.decode(record, type=SignedRecord)
    sealed = msgspec.msgpack.decode(signed.body, type=st.SealedStory)
    moved = msgspec.structs.replace(sealed, audience="close_friends")
    body = msgspec.msgpack.encode(moved)
    resigned = msgspec.msgpack.encode(SignedRecord(
        body=body, sig=alice.sign(st.story_message(body)).signature))
    with pytest.raises(DecryptionFailed):
        st.open_sealed_story(st.open_story(resigned), KEY)


def test_only_the_two_audiences_and_bounded_records() -> None:
    alice = SigningKey.generate()
    with pytest.raises(ValueError, match="audience"):
        st.seal_story(_story(alice), "everyone", 1, KEY, _sign(alice))
    for record in (b"\x00" * (st.MAX_STORY_RECORD + 1), b"\xc1"):
        with pytest.raises(ProtocolError) as info:
            st.open_story(record)
        assert info.value.code == "malformed"


def _reseal(sealed: st.SealedStory, plaintext: bytes) -> st.SealedStory:
    """``sealed`` with ``plaintext`` inside, encrypted under KEY with its own AD: what an
    author's buggy or hostile client could make."""
    import nacl.bindings as nacl_b

    ad = st.story_ad(sealed.author, sealed.id, sealed.posted_at, sealed.expires_at,
                     sealed.audience, sealed.key_id, sealed.blob)
    nonce = os.urandom(st.NONCE_LEN)
    return msgspec.structs.replace(sealed, ciphertext=nonce + (
        nacl_b.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, KEY)))


def test_a_story_whose_inside_disagrees_with_its_envelope_is_refused() -> None:
    alice = SigningKey.generate()
    sealed = st.open_story(st.seal_story(_story(alice), st.FOLLOWERS, 1, KEY, _sign(alice)))
    redated = _story(alice, id=sealed.id, posted_at=2_000, expires_at=2_000 + 1)
    for inside in (msgspec.msgpack.encode(redated), b"\xc1"):
        with pytest.raises(ProtocolError) as info:
            st.open_sealed_story(_reseal(sealed, inside), KEY)
        assert info.value.code == "malformed"
