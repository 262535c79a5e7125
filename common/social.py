"""The social layer's signed public records: profiles, follows and follow approvals.

Each record is the MessagePack of a struct (exactly as signed) plus an Ed25519
signature by its author over a domain-separated message, so a signature made for
one kind of record never verifies as another. The relay checks signatures before
storing, and every client checks them again before showing anything (docs/design.md:
the relay is untrusted). Pure: encode, sign, verify; clocks are arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Final, TypeVar

import msgspec
from nacl import bindings as nacl_b
from nacl.exceptions import CryptoError as NaclCryptoError

from .crypto.errors import DecryptionFailed
from .crypto.media import MediaRef
from .errors import ErrorCode, ProtocolError
from .identity import verify_signature

__all__ = [
    "is_reaction_emoji",
    "MAX_DISPLAY_NAME", "MAX_BIO", "MAX_RECORD",
    "Profile", "NftAvatar", "Follow", "Approval", "SignedRecord",
    "profile_message", "follow_message", "approval_message",
    "sign_profile", "sign_follow", "sign_approval",
    "open_profile", "open_follow", "open_approval",
    "MAX_POST_TEXT", "MAX_POST_IMAGES", "MAX_POST_RECORD", "AUDIENCE_KEY_LEN",
    "Post", "SealedPost", "post_message", "sign_post", "seal_post", "open_post",
    "open_sealed_post", "audience_ad",
    "MAX_COMMENT_TEXT", "MAX_EMOJI", "MAX_COMMENT_RECORD", "Comment", "SealedComment",
    "Reaction", "comment_message", "reaction_message", "comment_ad", "sign_comment",
    "seal_comment", "open_comment", "open_sealed_comment", "sign_reaction", "open_reaction",
]

MAX_DISPLAY_NAME: Final = 64  # characters
MAX_BIO: Final = 500  # characters
MAX_RECORD: Final = 8 * 1024  # bytes of one signed record on the wire

Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Sig64 = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
Time = Annotated[int, msgspec.Meta(ge=0)]

Sign = Callable[[bytes], bytes]


class NftAvatar(msgspec.Struct, forbid_unknown_fields=True):
    """An ERC-721 token shown as avatar; clients show it only while ``ownerOf`` on the chain
    is one of the profile owner's verified wallets (client.wallet)."""

    chain_id: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    contract: Annotated[str, msgspec.Meta(pattern="^0x[0-9a-fA-F]{40}$")]
    token_id: Annotated[str, msgspec.Meta(pattern="^[0-9]{1,78}$")]  # decimal (a uint256)


class Profile(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """A user's public profile. Everything here is public, the avatar's key included:
    the avatar blob stays ciphertext on the relay like every blob, and anyone who can
    read the profile can open it."""

    user: Key32  # whose profile; must be the signer
    updated_at: Time  # the author's clock, ms; the newest record wins
    display_name: Annotated[str, msgspec.Meta(max_length=MAX_DISPLAY_NAME)] = ""
    bio: Annotated[str, msgspec.Meta(max_length=MAX_BIO)] = ""
    avatar: MediaRef | None = None  # a sealed image blob and the key that opens it
    private: bool = False  # a private account approves each follower
    nft_avatar: NftAvatar | None = None  # shown by clients only while held (see NftAvatar)


class Follow(msgspec.Struct, forbid_unknown_fields=True):
    """``follower`` asks to follow ``target`` (signed by the follower)."""

    follower: Key32
    target: Key32
    at: Time  # the follower's clock, ms


class Approval(msgspec.Struct, forbid_unknown_fields=True):
    """``owner`` (a private account) lets ``follower`` follow them (signed by the owner)."""

    owner: Key32
    follower: Key32
    at: Time


class SignedRecord(msgspec.Struct, forbid_unknown_fields=True):
    body: bytes  # MessagePack of a Profile / Follow / Approval, exactly as signed
    sig: Sig64


def profile_message(body: bytes) -> bytes:
    return b"tenchat/profile/v1\x00" + body


def follow_message(body: bytes) -> bytes:
    return b"tenchat/follow/v1\x00" + body


def approval_message(body: bytes) -> bytes:
    return b"tenchat/follow-approve/v1\x00" + body


_enc = msgspec.msgpack.Encoder()
_signed_dec = msgspec.msgpack.Decoder(SignedRecord)
R = TypeVar("R", bound=msgspec.Struct)


def _sign(body: msgspec.Struct, message: Callable[[bytes], bytes], sign: Sign) -> bytes:
    data = _enc.encode(body)
    return _enc.encode(SignedRecord(body=data, sig=sign(message(data))))


def sign_profile(profile: Profile, sign: Sign) -> bytes:
    """The record bytes of ``profile`` signed with ``sign(bytes) -> 64-byte signature``."""
    return _sign(profile, profile_message, sign)


def sign_follow(follow: Follow, sign: Sign) -> bytes:
    return _sign(follow, follow_message, sign)


def sign_approval(approval: Approval, sign: Sign) -> bytes:
    return _sign(approval, approval_message, sign)


def _open(record: bytes, kind: type[R], message: Callable[[bytes], bytes],
          signer: Callable[[R], bytes]) -> R:
    what = kind.__name__.lower()
    try:
        signed = _signed_dec.decode(record)
        body = msgspec.msgpack.decode(signed.body, type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"bad {what} record: {exc}") from None
    if not verify_signature(signer(body), message(signed.body), signed.sig):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, f"{what} record not signed by its author")
    return body


def open_profile(record: bytes) -> Profile:
    """Decode a profile record and verify it is signed by ``profile.user``;
    ProtocolError(malformed | bad_signature)."""
    return _open(record, Profile, profile_message, lambda p: p.user)


def open_follow(record: bytes) -> Follow:
    """Decode a follow record and verify it is signed by ``follow.follower``."""
    return _open(record, Follow, follow_message, lambda r: r.follower)


def open_approval(record: bytes) -> Approval:
    """Decode an approval record and verify it is signed by ``approval.owner``."""
    return _open(record, Approval, approval_message, lambda r: r.owner)


# --- posts ---------------------------------------------------------------------------------

MAX_POST_TEXT: Final = 5000  # characters
MAX_POST_IMAGES: Final = 4
MAX_POST_RECORD: Final = 48 * 1024  # bytes of one signed post record on the wire
AUDIENCE_KEY_LEN: Final = 32
NONCE_LEN: Final = 24  # XChaCha20-Poly1305 (IETF)

PostId = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
KeyId = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]


class Post(msgspec.Struct, tag_field="t", tag="post", forbid_unknown_fields=True,
           omit_defaults=True):
    """A public post, and the plaintext body of a followers-only one."""

    author: Key32
    id: PostId  # 16 random bytes
    created_at: Time  # the author's clock, ms
    text: Annotated[str, msgspec.Meta(max_length=MAX_POST_TEXT)] = ""
    images: Annotated[list[MediaRef], msgspec.Meta(max_length=MAX_POST_IMAGES)] = []


class SealedPost(msgspec.Struct, tag_field="t", tag="sealed_post", forbid_unknown_fields=True):
    """A followers-only post: the Post's MessagePack under the author's audience key.
    The signature covers these fields (ciphertext included), so anyone, the relay too,
    can check authorship without reading it."""

    author: Key32
    id: PostId
    created_at: Time
    audience_key_id: KeyId
    ciphertext: bytes  # 24-byte random nonce || XChaCha20-Poly1305 ciphertext and tag


_post_dec = msgspec.msgpack.Decoder(Post | SealedPost)
_plain_dec = msgspec.msgpack.Decoder(Post)


def post_message(body: bytes) -> bytes:
    return b"tenchat/post/v1\x00" + body


def audience_ad(author: bytes, post_id: bytes, key_id: int) -> bytes:
    """The AEAD associated data of a followers-only post: author || id || key id (u32 BE)."""
    return author + post_id + key_id.to_bytes(4, "big")


def sign_post(post: Post, sign: Sign) -> bytes:
    """A public post record."""
    return _sign(post, post_message, sign)


def seal_post(post: Post, key_id: int, key: bytes, sign: Sign) -> bytes:
    """A followers-only post record: ``post`` encrypted under audience key ``key_id``."""
    nonce = nacl_b.randombytes(NONCE_LEN)
    ct = nacl_b.crypto_aead_xchacha20poly1305_ietf_encrypt(
        _enc.encode(post), audience_ad(post.author, post.id, key_id), nonce, key)
    sealed = SealedPost(author=post.author, id=post.id, created_at=post.created_at,
                        audience_key_id=key_id, ciphertext=nonce + ct)
    return _sign(sealed, post_message, sign)


def open_post(record: bytes) -> Post | SealedPost:
    """Decode a post record and verify it is signed by its author;
    ProtocolError(malformed | bad_signature). A SealedPost stays sealed."""
    if len(record) > MAX_POST_RECORD:
        raise ProtocolError(ErrorCode.MALFORMED, "post record too large")
    try:
        signed = _signed_dec.decode(record)
        body = _post_dec.decode(signed.body)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"bad post record: {exc}") from None
    if not verify_signature(body.author, post_message(signed.body), signed.sig):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "post record not signed by its author")
    return body


def open_sealed_post(sealed: SealedPost, key: bytes) -> Post:
    """The Post inside ``sealed`` (already verified by open_post); DecryptionFailed if the
    key is wrong or the ciphertext was changed, ProtocolError if the inside disagrees
    with the signed outside."""
    ct = sealed.ciphertext
    try:
        data = nacl_b.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ct[NONCE_LEN:], audience_ad(sealed.author, sealed.id, sealed.audience_key_id),
            ct[:NONCE_LEN], key)
    except (NaclCryptoError, ValueError, TypeError):
        raise DecryptionFailed("followers-only post does not open with this key") from None
    try:
        post = _plain_dec.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"bad sealed post: {exc}") from None
    if (post.author, post.id, post.created_at) != (sealed.author, sealed.id, sealed.created_at):
        raise ProtocolError(ErrorCode.MALFORMED, "sealed post disagrees with its envelope")
    return post


# --- comments and reactions ----------------------------------------------------------------

MAX_COMMENT_TEXT: Final = 2000  # characters
MAX_EMOJI: Final = 16  # characters
MAX_COMMENT_RECORD: Final = 16 * 1024  # bytes of one signed comment record on the wire


class Comment(msgspec.Struct, tag_field="t", tag="comment", forbid_unknown_fields=True):
    """A comment on a public post, and the plaintext body of a sealed one."""

    author: Key32  # the commenter; must be the signer
    post_id: PostId
    post_author: Key32
    id: PostId  # 16 random bytes
    created_at: Time  # the commenter's clock, ms
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_COMMENT_TEXT)]


class SealedComment(msgspec.Struct, tag_field="t", tag="sealed_comment",
                    forbid_unknown_fields=True):
    """A comment on a followers-only post: the Comment's MessagePack under the post's
    audience key (the post author's key ``audience_key_id``). Signed outside."""

    author: Key32
    post_id: PostId
    post_author: Key32
    id: PostId
    created_at: Time
    audience_key_id: KeyId
    ciphertext: bytes  # 24-byte random nonce || XChaCha20-Poly1305 ciphertext and tag


class Reaction(msgspec.Struct, tag_field="t", tag="reaction", forbid_unknown_fields=True,
               omit_defaults=True):
    """``author``'s emoji reaction on a post (or, ``removed``, its withdrawal). Always
    plaintext, on followers-only posts too: the relay counts them."""

    author: Key32
    post_id: PostId
    post_author: Key32
    emoji: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EMOJI)]
    created_at: Time
    removed: bool = False


_comment_dec = msgspec.msgpack.Decoder(Comment | SealedComment)
_plain_comment_dec = msgspec.msgpack.Decoder(Comment)


def comment_message(body: bytes) -> bytes:
    return b"tenchat/comment/v1\x00" + body


def reaction_message(body: bytes) -> bytes:
    return b"tenchat/reaction/v1\x00" + body


def comment_ad(c: Comment | SealedComment, key_id: int) -> bytes:
    """AEAD associated data of a sealed comment: a label, commenter, post author, post id,
    comment id and key id (u32 BE), so it can't be moved to another post or posed as a post."""
    return (b"tenchat/comment\x00" + c.author + c.post_author + c.post_id + c.id
            + key_id.to_bytes(4, "big"))


def sign_comment(comment: Comment, sign: Sign) -> bytes:
    """A comment record on a public post."""
    return _sign(comment, comment_message, sign)


def seal_comment(comment: Comment, key_id: int, key: bytes, sign: Sign) -> bytes:
    """A comment record on a followers-only post, sealed under its audience key."""
    nonce = nacl_b.randombytes(NONCE_LEN)
    ct = nacl_b.crypto_aead_xchacha20poly1305_ietf_encrypt(
        _enc.encode(comment), comment_ad(comment, key_id), nonce, key)
    sealed = SealedComment(author=comment.author, post_id=comment.post_id,
                           post_author=comment.post_author, id=comment.id,
                           created_at=comment.created_at, audience_key_id=key_id,
                           ciphertext=nonce + ct)
    return _sign(sealed, comment_message, sign)


def open_comment(record: bytes) -> Comment | SealedComment:
    """Decode a comment record and verify it is signed by its author;
    ProtocolError(malformed | bad_signature). A SealedComment stays sealed."""
    if len(record) > MAX_COMMENT_RECORD:
        raise ProtocolError(ErrorCode.MALFORMED, "comment record too large")
    try:
        signed = _signed_dec.decode(record)
        body = _comment_dec.decode(signed.body)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"bad comment record: {exc}") from None
    if not verify_signature(body.author, comment_message(signed.body), signed.sig):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "comment record not signed by its author")
    return body


def open_sealed_comment(sealed: SealedComment, key: bytes) -> Comment:
    """The Comment inside ``sealed`` (verified by open_comment); DecryptionFailed if the
    key is wrong or the ciphertext changed, ProtocolError if inside and outside differ."""
    ct = sealed.ciphertext
    try:
        data = nacl_b.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ct[NONCE_LEN:], comment_ad(sealed, sealed.audience_key_id), ct[:NONCE_LEN], key)
    except (NaclCryptoError, ValueError, TypeError):
        raise DecryptionFailed("sealed comment does not open with this key") from None
    try:
        comment = _plain_comment_dec.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"bad sealed comment: {exc}") from None
    outside = (sealed.author, sealed.post_id, sealed.post_author, sealed.id, sealed.created_at)
    if (comment.author, comment.post_id, comment.post_author, comment.id,
            comment.created_at) != outside:
        raise ProtocolError(ErrorCode.MALFORMED, "sealed comment disagrees with its envelope")
    return comment


def sign_reaction(reaction: Reaction, sign: Sign) -> bytes:
    return _sign(reaction, reaction_message, sign)


def open_reaction(record: bytes) -> Reaction:
    """Decode a reaction record and verify it is signed by ``reaction.author``."""
    if len(record) > MAX_RECORD:
        raise ProtocolError(ErrorCode.MALFORMED, "reaction record too large")
    return _open(record, Reaction, reaction_message, lambda r: r.author)


def is_reaction_emoji(text: str) -> bool:
    """True if ``text`` is exactly one emoji (one grapheme: skin tones, ZWJ sequences,
    flags and keycaps included) on the Unicode emoji list the ``emoji`` package keeps.
    The relay refuses other reactions (bad_reaction); clients check before sending."""
    if not text or len(text) > MAX_EMOJI:
        return False
    import emoji  # lazily: its table is large, and only reactions need it

    return bool(emoji.is_emoji(text))
