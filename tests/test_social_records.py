"""common.social: signed profile, follow, post, comment and reaction records — what a
client (and the relay) accepts and refuses, without a relay."""

from __future__ import annotations

import os

import msgspec
import nacl.bindings as nacl_b
import pytest
from nacl.signing import SigningKey

from tenchat.common import social as s
from tenchat.common.crypto.errors import DecryptionFailed
from tenchat.common.errors import ProtocolError

KEY = os.urandom(32)  # an audience key


class Author:
    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.user = bytes(self.key.verify_key)

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data).signature


def _code(fn: object, *args: object) -> str:
    with pytest.raises(ProtocolError) as err:
        fn(*args)  # type: ignore[operator]
    return err.value.code


def test_profile_follow_and_approval_records_open_only_for_their_signer() -> None:
    alice, bob = Author(), Author()
    profile = s.Profile(user=alice.user, updated_at=1, display_name="Alice", private=True)
    assert s.open_profile(s.sign_profile(profile, alice.sign)) == profile
    assert _code(s.open_profile, s.sign_profile(profile, bob.sign)) == "bad_signature"
    follow = s.Follow(follower=bob.user, target=alice.user, at=2)
    assert s.open_follow(s.sign_follow(follow, bob.sign)) == follow
    assert _code(s.open_follow, s.sign_follow(follow, alice.sign)) == "bad_signature"
    approval = s.Approval(owner=alice.user, follower=bob.user, at=3)
    assert s.open_approval(s.sign_approval(approval, alice.sign)) == approval
    # a follow record is no approval, though both are signed by someone in it
    assert _code(s.open_approval, s.sign_follow(follow, bob.sign)) == "malformed"
    assert _code(s.open_profile, b"\xc1") == "malformed"


def test_a_public_post_opens_and_a_changed_or_oversized_one_does_not() -> None:
    alice = Author()
    post = s.Post(author=alice.user, id=os.urandom(16), created_at=5, text="hi")
    record = s.sign_post(post, alice.sign)
    assert s.open_post(record) == post
    signed = msgspec.msgpack.decode(record, type=s.SignedRecord)
    edited = s.Post(author=alice.user, id=post.id, created_at=5, text="ho")
    forged = msgspec.msgpack.encode(s.SignedRecord(body=msgspec.msgpack.encode(edited),
                                                   sig=signed.sig))
    assert _code(s.open_post, forged) == "bad_signature"
    assert _code(s.open_post, b"\x00" * (s.MAX_POST_RECORD + 1)) == "malformed"
    assert _code(s.open_post, msgspec.msgpack.encode(
        s.SignedRecord(body=b"\x81\xa1t\xa3bad", sig=bytes(64)))) == "malformed"


def test_a_followers_only_post_opens_with_its_key_and_only_as_sealed() -> None:
    alice = Author()
    post = s.Post(author=alice.user, id=os.urandom(16), created_at=5, text="friends only")
    sealed = s.open_post(s.seal_post(post, 7, KEY, alice.sign))
    assert isinstance(sealed, s.SealedPost) and b"friends" not in sealed.ciphertext
    assert s.open_sealed_post(sealed, KEY) == post
    with pytest.raises(DecryptionFailed):
        s.open_sealed_post(sealed, os.urandom(32))
    moved = msgspec.structs.replace(sealed, audience_key_id=8)  # the key id is bound (AD)
    with pytest.raises(DecryptionFailed):
        s.open_sealed_post(moved, KEY)


def _seal_raw(plaintext: bytes, ad: bytes) -> bytes:
    nonce = os.urandom(s.NONCE_LEN)
    return nonce + nacl_b.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, KEY)


def test_a_sealed_post_whose_inside_disagrees_with_its_outside_is_refused() -> None:
    alice = Author()
    outside = s.SealedPost(author=alice.user, id=os.urandom(16), created_at=5,
                           audience_key_id=1, ciphertext=b"")
    ad = s.audience_ad(outside.author, outside.id, 1)
    other = s.Post(author=alice.user, id=os.urandom(16), created_at=5, text="x")
    swapped = msgspec.structs.replace(outside, ciphertext=_seal_raw(msgspec.msgpack.encode(
        other), ad))
    assert _code(s.open_sealed_post, swapped, KEY) == "malformed"
    garbage = msgspec.structs.replace(outside, ciphertext=_seal_raw(b"\xc1", ad))
    assert _code(s.open_sealed_post, garbage, KEY) == "malformed"


def test_comments_public_and_sealed() -> None:
    alice, bob = Author(), Author()
    comment = s.Comment(author=bob.user, post_id=os.urandom(16), post_author=alice.user,
                        id=os.urandom(16), created_at=9, text="nice")
    assert s.open_comment(s.sign_comment(comment, bob.sign)) == comment
    assert _code(s.open_comment, s.sign_comment(comment, alice.sign)) == "bad_signature"
    assert _code(s.open_comment, b"\x00" * (s.MAX_COMMENT_RECORD + 1)) == "malformed"
    assert _code(s.open_comment, b"\xc1") == "malformed"
    sealed = s.open_comment(s.seal_comment(comment, 3, KEY, bob.sign))
    assert isinstance(sealed, s.SealedComment)
    assert s.open_sealed_comment(sealed, KEY) == comment
    with pytest.raises(DecryptionFailed):
        s.open_sealed_comment(sealed, os.urandom(32))
    # inside: a comment on another post, sealed with this envelope's associated data
    elsewhere = msgspec.structs.replace(comment, post_id=os.urandom(16))
    moved = msgspec.structs.replace(sealed, ciphertext=_seal_raw(
        msgspec.msgpack.encode(elsewhere), s.comment_ad(sealed, 3)))
    assert _code(s.open_sealed_comment, moved, KEY) == "malformed"
    garbage = msgspec.structs.replace(sealed, ciphertext=_seal_raw(
        b"\xc1", s.comment_ad(sealed, 3)))
    assert _code(s.open_sealed_comment, garbage, KEY) == "malformed"


def test_reactions_are_signed_bounded_and_one_emoji() -> None:
    alice, bob = Author(), Author()
    reaction = s.Reaction(author=bob.user, post_id=os.urandom(16), post_author=alice.user,
                          emoji="👍", created_at=1)
    assert s.open_reaction(s.sign_reaction(reaction, bob.sign)) == reaction
    assert _code(s.open_reaction, s.sign_reaction(reaction, alice.sign)) == "bad_signature"
    assert _code(s.open_reaction, b"\x00" * (s.MAX_RECORD + 1)) == "malformed"
    assert s.is_reaction_emoji("👍") and s.is_reaction_emoji("👍🏽")
    assert not s.is_reaction_emoji("") and not s.is_reaction_emoji("ok")
    assert not s.is_reaction_emoji("👍👍") and not s.is_reaction_emoji("👍" * 17)
