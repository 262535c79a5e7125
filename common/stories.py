"""24-hour stories: the signed, sealed story record and the view receipt's binding.

A story is always ciphertext on the relay: the :class:`Story` (text and/or an image's
MediaRef) is sealed with XChaCha20-Poly1305 under the author's audience key
(``followers``) or close-friends key (``close_friends``), and the author signs the
:class:`SealedStory` around it (ciphertext, audience, key id, expiry, blob id), so the
relay can check authorship and expiry without reading it. Pure: clocks are arguments.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from nacl import bindings as nacl_b
from nacl.exceptions import CryptoError as NaclCryptoError

from .crypto.errors import DecryptionFailed
from .crypto.media import MediaRef
from .errors import ErrorCode, ProtocolError
from .identity import verify_signature
from .social import NONCE_LEN, Sign, SignedRecord

__all__ = [
    "STORY_TTL_MS", "MAX_STORY_TEXT", "MAX_STORY_RECORD", "FOLLOWERS", "CLOSE_FRIENDS",
    "Story", "SealedStory", "story_message", "story_ad", "seal_story", "open_story",
    "open_sealed_story",
]

STORY_TTL_MS: Final = 24 * 3600 * 1000  # a story lives 24 hours after posting
MAX_STORY_TEXT: Final = 2000  # characters
MAX_STORY_RECORD: Final = 16 * 1024  # bytes of one signed story record on the wire
FOLLOWERS: Final = "followers"
CLOSE_FRIENDS: Final = "close_friends"

Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
StoryId = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
Time = Annotated[int, msgspec.Meta(ge=0)]
KeyId = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
Audience = Literal["followers", "close_friends"]


class Story(msgspec.Struct, tag_field="t", tag="story", forbid_unknown_fields=True,
            omit_defaults=True):
    """The plaintext of a story (inside the seal only)."""

    author: Key32
    id: StoryId  # 16 random bytes
    posted_at: Time  # the author's clock, ms
    expires_at: Time  # posted_at + at most STORY_TTL_MS
    text: Annotated[str, msgspec.Meta(max_length=MAX_STORY_TEXT)] = ""
    image: MediaRef | None = None  # a sealed image blob and the key that opens it


class SealedStory(msgspec.Struct, tag_field="t", tag="sealed_story",
                  forbid_unknown_fields=True, omit_defaults=True):
    """What the relay stores: the Story's MessagePack under an audience key, signed by the
    author over all of these fields. ``blob`` names the image's blob (ciphertext, no key)
    so the relay can delete it with the story."""

    author: Key32
    id: StoryId
    posted_at: Time
    expires_at: Time
    audience: Audience
    key_id: KeyId
    ciphertext: bytes  # 24-byte random nonce || XChaCha20-Poly1305 ciphertext and tag
    blob: Key32 | None = None


_enc = msgspec.msgpack.Encoder()
_signed_dec = msgspec.msgpack.Decoder(SignedRecord)
_sealed_dec = msgspec.msgpack.Decoder(SealedStory)
_plain_dec = msgspec.msgpack.Decoder(Story)


def story_message(body: bytes) -> bytes:
    return b"tenchat/story/v1\x00" + body


def story_ad(author: bytes, story_id: bytes, posted_at: int, expires_at: int,
             audience: str, key_id: int, blob: bytes | None) -> bytes:
    """AEAD associated data: a label, author, id, both times (u64 BE), audience, key id
    (u32 BE) and blob id, so a story can't be re-dated, moved to another audience or
    given another image."""
    return (b"tenchat/story\x00" + author + story_id + posted_at.to_bytes(8, "big")
            + expires_at.to_bytes(8, "big") + audience.encode() + b"\x00"
            + key_id.to_bytes(4, "big") + (blob or b""))


def seal_story(story: Story, audience: str, key_id: int, key: bytes, sign: Sign) -> bytes:
    """The signed record of ``story`` sealed under ``key`` (audience key ``key_id``)."""
    if audience not in (FOLLOWERS, CLOSE_FRIENDS):
        raise ValueError(f"unknown story audience {audience!r}")
    blob = story.image.hash if story.image is not None else None
    nonce = nacl_b.randombytes(NONCE_LEN)
    ct = nacl_b.crypto_aead_xchacha20poly1305_ietf_encrypt(
        _enc.encode(story),
        story_ad(story.author, story.id, story.posted_at, story.expires_at, audience, key_id,
                 blob),
        nonce, key)
    sealed = SealedStory(author=story.author, id=story.id, posted_at=story.posted_at,
                         expires_at=story.expires_at, audience=audience,  # type: ignore[arg-type]
                         key_id=key_id, ciphertext=nonce + ct, blob=blob)
    data = _enc.encode(sealed)
    return _enc.encode(SignedRecord(body=data, sig=sign(story_message(data))))


def open_story(record: bytes) -> SealedStory:
    """Decode a story record, check its lifetime (0 < expires_at - posted_at <= 24 h) and
    that its author signed it; ProtocolError(malformed | bad_signature). Still sealed."""
    if len(record) > MAX_STORY_RECORD:
        raise ProtocolError(ErrorCode.MALFORMED, "story record too large")
    try:
        signed = _signed_dec.decode(record)
        sealed = _sealed_dec.decode(signed.body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"bad story record: {exc}") from None
    if not 0 < sealed.expires_at - sealed.posted_at <= STORY_TTL_MS:
        raise ProtocolError(ErrorCode.MALFORMED, "a story lives more than 0 and at most 24 h")
    if not verify_signature(sealed.author, story_message(signed.body), signed.sig):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "story record not signed by its author")
    return sealed


def open_sealed_story(sealed: SealedStory, key: bytes) -> Story:
    """The Story inside ``sealed`` (verified by open_story); DecryptionFailed if the key is
    wrong or anything signed was changed, ProtocolError if inside and outside differ."""
    ct = sealed.ciphertext
    ad = story_ad(sealed.author, sealed.id, sealed.posted_at, sealed.expires_at,
                  sealed.audience, sealed.key_id, sealed.blob)
    try:
        data = nacl_b.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ct[NONCE_LEN:], ad, ct[:NONCE_LEN], key)
    except (NaclCryptoError, ValueError, TypeError):
        raise DecryptionFailed("story does not open with this key") from None
    try:
        story = _plain_dec.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"bad sealed story: {exc}") from None
    blob = story.image.hash if story.image is not None else None
    if ((story.author, story.id, story.posted_at, story.expires_at, blob)
            != (sealed.author, sealed.id, sealed.posted_at, sealed.expires_at, sealed.blob)):
        raise ProtocolError(ErrorCode.MALFORMED, "sealed story disagrees with its envelope")
    return story
