"""Group membership as a chain of signed changes, and the rules both sides enforce.

A group's history is a list of :class:`SignedChange` records. Each names the
group, its version (1 for ``create``, then +1), the hash of the previous
record, the actor, and one operation. The actor signs it with their identity
key. The relay checks every change before accepting it, and every client
checks the whole chain again (docs/design.md: the relay is untrusted).

:func:`check_change` is pure: it is given only the roles it needs (the actor's
and the targets'), so the relay can check a change to a 200,000-member group
without loading the membership.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Final

import msgspec

from .errors import ErrorCode, ProtocolError
from .identity import verify_signature

__all__ = [
    "OWNER", "ADMIN", "MEMBER", "ROLES", "OPS", "MAX_TARGETS", "GENESIS",
    "GroupChange", "SignedChange", "Effects", "GroupState",
    "change_message", "sign_change", "decode_signed", "record_hash", "check_change",
    "can_post", "can_pin",
]

OWNER, ADMIN, MEMBER = "owner", "admin", "member"
ROLES: Final = (OWNER, ADMIN, MEMBER)
_RANK: Final = {OWNER: 3, ADMIN: 2, MEMBER: 1}
OPS: Final = ("create", "add", "remove", "leave", "role", "meta")
MAX_TARGETS: Final = 1000  # users one record may add or remove
GENESIS: Final = bytes(32)  # the "previous hash" of a create record

GroupId = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]


class GroupChange(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """One membership or metadata change (the signed part of a record)."""

    group: GroupId
    version: Annotated[int, msgspec.Meta(ge=1)]
    prev: Key32  # record_hash of the previous record; GENESIS for create
    actor: Key32  # who made and signed the change
    at: int  # the actor's clock, ms (informational)
    op: str  # one of OPS
    members: Annotated[list[Key32], msgspec.Meta(max_length=MAX_TARGETS)] = []
    role: str = ""  # op "role": the new role of `members`
    name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    topic: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    # MessagePack of a MediaRef (common.crypto.media): the sealed image and its key. Like
    # the name and topic, readable by the relay; b"" removes the avatar.
    avatar: Annotated[bytes, msgspec.Meta(max_length=1024)] | None = None
    announce: bool | None = None  # only admins may post
    # an NFT gate: MessagePack of common.wallets.NftGate (b"" removes it); joining needs a
    # token of its contract, checked by the admin's client and re-checked by members
    gate: Annotated[bytes, msgspec.Meta(max_length=128)] | None = None
    # the name, topic and avatar sealed with the group's metadata key
    # (common.crypto.group_meta), which the relay never has: used instead of the three
    sealed: Annotated[bytes, msgspec.Meta(max_length=4096)] | None = None


class SignedChange(msgspec.Struct, forbid_unknown_fields=True):
    change: bytes  # MessagePack of a GroupChange, exactly as signed
    sig: Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]


_enc = msgspec.msgpack.Encoder()
_change_dec = msgspec.msgpack.Decoder(GroupChange)
_signed_dec = msgspec.msgpack.Decoder(SignedChange)


def change_message(change_bytes: bytes) -> bytes:
    """What the actor signs: domain-separated, so the signature means nothing else."""
    return b"tenchat/group-change/v1\x00" + change_bytes


def sign_change(change: GroupChange, sign: object) -> bytes:
    """Encode and sign a change with ``sign(bytes) -> 64-byte signature``; the record bytes."""
    change_bytes = _enc.encode(change)
    sig = sign(change_message(change_bytes))  # type: ignore[operator]
    return _enc.encode(SignedChange(change=change_bytes, sig=sig))


def decode_signed(record: bytes) -> tuple[GroupChange, SignedChange]:
    """Decode a record and verify its signature; ProtocolError(malformed | bad_signature)."""
    try:
        signed = _signed_dec.decode(record)
        change = _change_dec.decode(signed.change)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"bad group record: {exc}") from None
    if not verify_signature(change.actor, change_message(signed.change), signed.sig):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "group change not signed by its actor")
    return change, signed


def record_hash(record: bytes) -> bytes:
    return hashlib.blake2b(record, digest_size=32).digest()


@dataclass
class Effects:
    """What a valid change does: role updates (None: no longer a member) and metadata."""

    roles: dict[bytes, str | None] = field(default_factory=dict)
    meta: dict[str, object] = field(default_factory=dict)


def _deny(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.FORBIDDEN, message)


def check_change(change: GroupChange, *, version: int, head: bytes,
                 roles: Mapping[bytes, str]) -> Effects:
    """Check ``change`` against the group's current ``version`` and ``head`` hash.

    ``roles`` must hold the current role of the actor and of every user in
    ``change.members`` that is a member (absent means not a member). Raises
    ProtocolError: ``protocol`` (wrong version or hash), ``malformed``
    (a change that makes no sense), ``forbidden`` (not allowed to the actor).
    """
    if change.version != version + 1 or change.prev != head:
        raise ProtocolError(ErrorCode.PROTOCOL,
                            f"group change for version {change.version} does not follow "
                            f"version {version}")
    if change.op not in OPS:
        raise ProtocolError(ErrorCode.MALFORMED, f"unknown group op {change.op[:20]!r}")
    if len(set(change.members)) != len(change.members):
        raise ProtocolError(ErrorCode.MALFORMED, "a user is named twice")
    actor_role = roles.get(change.actor)
    rank = _RANK.get(actor_role or "", 0)
    effects = Effects()
    op = change.op
    if op == "create":
        if version != 0:
            raise ProtocolError(ErrorCode.PROTOCOL, "the group exists")
        if not change.name and not change.sealed:
            raise ProtocolError(ErrorCode.MALFORMED, "a new group needs a name")
        effects.roles[change.actor] = OWNER
        for user in change.members:
            if user != change.actor:
                effects.roles[user] = MEMBER
        effects.meta.update(name=change.name or "", topic=change.topic or "",
                            avatar=change.avatar or b"", announce=bool(change.announce),
                            gate=change.gate or b"", sealed=change.sealed or b"")
        return effects
    if version == 0:
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such group")
    if rank == 0:
        raise _deny("only members may change a group")
    if op == "add":
        if rank < _RANK[ADMIN]:
            raise _deny("only admins may add members")
        if not change.members:
            raise ProtocolError(ErrorCode.MALFORMED, "add names no one")
        for user in change.members:
            if user in roles:
                raise ProtocolError(ErrorCode.MALFORMED, "already a member")
            effects.roles[user] = MEMBER
    elif op == "remove":
        if rank < _RANK[ADMIN]:
            raise _deny("only admins may remove members")
        if not change.members:
            raise ProtocolError(ErrorCode.MALFORMED, "remove names no one")
        for user in change.members:
            target = roles.get(user)
            if target is None:
                raise ProtocolError(ErrorCode.NOT_FOUND, "not a member")
            if user == change.actor:
                raise ProtocolError(ErrorCode.MALFORMED, "to remove yourself, leave")
            if _RANK[target] >= rank:
                raise _deny(f"an {actor_role} can't remove an {target}")
            effects.roles[user] = None
    elif op == "leave":
        if change.members not in ([], [change.actor]):
            raise ProtocolError(ErrorCode.MALFORMED, "leave names only oneself")
        if actor_role == OWNER:
            raise _deny("the owner can't leave; make another member owner first")
        effects.roles[change.actor] = None
    elif op == "role":
        if actor_role != OWNER:
            raise _deny("only the owner may change roles")
        if change.role not in ROLES or not change.members:
            raise ProtocolError(ErrorCode.MALFORMED, "role names a role and members")
        if change.role == OWNER and len(change.members) != 1:
            raise ProtocolError(ErrorCode.MALFORMED, "a group has one owner")
        for user in change.members:
            if user not in roles:
                raise ProtocolError(ErrorCode.NOT_FOUND, "not a member")
            if user == change.actor:
                raise ProtocolError(ErrorCode.MALFORMED, "the owner's role changes by transfer")
            effects.roles[user] = change.role
        if change.role == OWNER:
            effects.roles[change.actor] = ADMIN  # ownership moves, it isn't shared
    elif op == "meta":
        if rank < _RANK[ADMIN]:
            raise _deny("only admins may change a group's name, topic, picture or posting rule")
        if change.members:
            raise ProtocolError(ErrorCode.MALFORMED, "meta names no members")
        for key in ("name", "topic", "avatar", "announce", "gate", "sealed"):
            value = getattr(change, key)
            if value is not None:
                effects.meta[key] = value
        if not effects.meta or effects.meta.get("name") == "":
            raise ProtocolError(ErrorCode.MALFORMED, "meta changes nothing")
    return effects


def can_post(role: str | None, announce: bool) -> bool:
    return role is not None and (not announce or _RANK[role] >= _RANK[ADMIN])


def can_pin(role: str | None) -> bool:
    return role is not None and _RANK[role] >= _RANK[ADMIN]


@dataclass
class GroupState:
    """A group as a client sees it after checking every record from ``create`` on."""

    group: bytes
    version: int = 0
    head: bytes = GENESIS
    name: str = ""
    topic: str = ""
    avatar: bytes = b""
    announce: bool = False
    roles: dict[bytes, str] = field(default_factory=dict)
    gate: bytes = b""  # an NFT gate (common.wallets.NftGate), or none
    sealed: bytes = b""  # name, topic and avatar under the metadata key (group_meta.py)

    def apply(self, record: bytes) -> GroupChange:
        """Verify and apply the next record (signature, chain, rules); returns its change."""
        change, _signed = decode_signed(record)
        if change.group != self.group:
            raise ProtocolError(ErrorCode.MALFORMED, "record of another group")
        involved = {u: r for u in (change.actor, *change.members)
                    if (r := self.roles.get(u)) is not None}
        effects = check_change(change, version=self.version, head=self.head, roles=involved)
        for user, role in effects.roles.items():
            if role is None:
                self.roles.pop(user, None)
            else:
                self.roles[user] = role
        for key, value in effects.meta.items():
            setattr(self, key, value)
        self.version = change.version
        self.head = record_hash(record)
        return change

    @classmethod
    def from_records(cls, group: bytes, records: list[bytes]) -> GroupState:
        state = cls(group)
        for record in records:
            state.apply(record)
        return state
