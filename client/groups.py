"""Groups on the client: signed membership changes, sender keys, the group log.

Every change is checked here again from the signed chain (the relay is
untrusted). Each member encrypts a group message once with their sender key
(common.crypto.sender_keys) and the relay stores it once; the sender key itself
travels to each member over the pairwise Double Ratchet sessions. When anyone
leaves or is removed, every member starts a new sender key and sends it only
to those who remain, so a removed member can't read what is posted afterwards.

Over 500 lines (~630): the membership chain, the sender keys per member device and the
log share one group state and one transaction per change; what can be pure already is
(group_rules.py: routing; common/groups.py: the chain's rules; common/crypto/group_meta.py:
the sealed name and topic). Moving the sender-key distribution to its own module is the
next split.
"""

from __future__ import annotations

import builtins  # GroupService.list shadows list in the class: annotations say builtins.list
import copy
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from nacl import secret

from ..common import content as c
from ..common import frames as f
from ..common.crypto.errors import CryptoError
from ..common.crypto.group_meta import META_KEY_LEN, GroupMeta, open_meta, seal_meta
from ..common.crypto.media import MediaRef
from ..common.crypto.sender_keys import SenderKey, SenderKeyDistribution, message_chain_id
from ..common.errors import ErrorCode, ProtocolError
from ..common.groups import (
    ADMIN,
    MEMBER,
    OWNER,
    GroupChange,
    GroupState,
    can_post,
    decode_signed,
    sign_change,
)
from ..common.identity import fingerprint
from ..common.padding import pad
from .cache import MessageRow, PendingEntry
from .connection import RelayError
from .errors import GroupError
from .events import ConversationChanged, Event, TypingChanged
from .group_rules import Route, route, route_change

if TYPE_CHECKING:
    from .base import Receipts
    from .service import Client

__all__ = ["GroupService", "GroupInfo", "GroupError"]

log = logging.getLogger("tenchat.client.groups")

# Typing indicators go to groups up to this size; in bigger ones they'd be noise (and a
# push to every online member for each burst of keys).
TYPING_MAX_MEMBERS = 256
_META_KEY = "group.meta_key."  # + group hex: its metadata key, sealed with the storage key
# A post looks again at the device lists of members not looked at for this long (a new
# or removed device makes a new sender chain; 1:1 traffic looks at every send).
MEMBER_DEVICES_MAX_AGE_MS = 60_000


@dataclass(frozen=True)
class GroupInfo:
    id: bytes
    name: str
    topic: str
    announce: bool
    version: int
    members: dict[bytes, str]  # user -> role
    handles: dict[bytes, str | None]
    my_role: str | None
    avatar: MediaRef | None = None  # the group's picture, if it has a valid one


_state_enc = msgspec.msgpack.Encoder()
_ref_enc = msgspec.msgpack.Encoder()
_ref_dec = msgspec.msgpack.Decoder(MediaRef)


def _avatar(raw: bytes) -> MediaRef | None:
    """The group's picture from its verified state; None if unset or not a valid reference
    (a member's bad record must not break the group for everyone)."""
    if not raw:
        return None
    try:
        return _ref_dec.decode(raw)
    except msgspec.MsgspecError:
        return None


def _dump(state: GroupState) -> bytes:
    """Our copy of a group's state (name, topic and avatar opened, if sealed)."""
    return _state_enc.encode({
        "group": state.group, "version": state.version, "head": state.head,
        "name": state.name, "topic": state.topic, "avatar": state.avatar,
        "announce": state.announce, "roles": list(state.roles.items()), "gate": state.gate,
        "sealed": state.sealed,
    })


def _load(raw: bytes) -> GroupState:
    d = msgspec.msgpack.decode(raw)
    return GroupState(d["group"], d["version"], d["head"], d["name"], d["topic"], d["avatar"],
                      d["announce"], {u: r for u, r in d["roles"]}, gate=d.get("gate", b""),
                      sealed=d.get("sealed", b""))


class GroupService:
    def __init__(self, client: Client) -> None:
        self.c = client
        self._box = secret.SecretBox(client.secrets.storage_key)  # metadata keys at rest

    # --- the metadata key (common/crypto/group_meta.py: the relay never has it) ---------

    async def _meta_key(self, group: bytes) -> bytes | None:
        raw = await self.c.cache.settings.get(_META_KEY + group.hex())
        return self._box.decrypt(raw) if isinstance(raw, bytes) and raw else None

    async def _set_meta_key(self, group: bytes, key: bytes) -> None:
        await self.c.cache.settings.set(_META_KEY + group.hex(), bytes(self._box.encrypt(key)))

    async def _reveal(self, state: GroupState) -> None:
        """Open the state's sealed name, topic and avatar with the key, if we have it."""
        key = await self._meta_key(state.group) if state.sealed else None
        if key is None:
            return
        try:
            meta = open_meta(key, state.group, state.sealed)
        except CryptoError:
            log.warning("a group's metadata does not open with the key we hold")
            return
        state.name, state.topic, state.avatar = meta.name, meta.topic, meta.avatar

    async def _send_key(self, group: bytes, members: builtins.list[bytes]) -> None:
        """Our copy of the metadata key, 1:1 to ``members`` (in the open transaction)."""
        key = await self._meta_key(group)
        if key is None:
            return
        body = c.encode_content(c.GroupKey(group=group, key=key))
        for user in members:
            if user != self.c.user:
                await self.c.queue_content(user, os.urandom(16), body, typed=False)

    async def _sealed_meta(self, group: bytes, state: GroupState, *, name: str | None = None,
                           topic: str | None = None, avatar: bytes | None = None
                           ) -> bytes | None:
        """The group's metadata with these changes, sealed; None for a group whose
        metadata is not sealed (made before this) or whose key we lack."""
        key = await self._meta_key(group)
        if key is None or not state.sealed:
            return None
        try:
            meta = GroupMeta(name=state.name if name is None else name,
                             topic=state.topic if topic is None else topic,
                             avatar=state.avatar if avatar is None else avatar)
            return seal_meta(key, group, msgspec.convert(meta, GroupMeta))
        except msgspec.ValidationError as exc:
            raise GroupError(f"bad group name, topic or picture: {exc}") from None

    async def receive_key(self, sender: bytes, content: c.GroupKey,
                          events: builtins.list[Event]) -> None:
        """A group's metadata key from one of its admins (over our pairwise session)."""
        state = await self.state(content.group)
        if state is None:
            try:  # the key can come before the record that added us
                state = await self._fetch_chain(content.group, None, events)
            except (ProtocolError, RelayError) as exc:
                log.warning("ignored a key for an unknown group: %s", exc)
                return
        if state.roles.get(sender) not in (OWNER, ADMIN):
            log.warning("ignored a group key from %s, not an admin", fingerprint(sender))
            return
        try:
            open_meta(content.key, state.group, state.sealed)  # the key that opens it
        except CryptoError:
            log.warning("ignored a group key that does not open the group's metadata")
            return
        await self._set_meta_key(content.group, content.key)
        await self._reveal(state)
        row = await self.c.cache.groups.state(content.group)
        await self.c.cache.groups.save(content.group, _dump(state), [],
                                       left=bool(row and row.left))
        events.append(ConversationChanged(content.group))

    # --- state --------------------------------------------------------------------------

    async def state(self, group: bytes) -> GroupState | None:
        row = await self.c.cache.groups.state(group)
        return _load(row[0]) if row else None

    async def find(self, name: str) -> bytes | None:
        """A group of ours by name (case-insensitive) or by its id in hex."""
        try:
            raw = bytes.fromhex(name)
        except ValueError:
            raw = b""
        matches = []
        for group in await self.c.cache.groups.ids():
            if group == raw:
                return group
            state = await self.state(group)
            if state is not None and state.name.lower() == name.lower():
                matches.append(group)
        if len(matches) > 1:
            raise GroupError(f"several groups are called {name!r}; use the group id")
        return matches[0] if matches else None

    async def require(self, name: str) -> bytes:
        group = await self.find(name)
        if group is None:
            raise GroupError(f"no group {name!r}")
        return group

    async def info(self, group: bytes) -> GroupInfo:
        state = await self.state(group)
        if state is None:
            raise GroupError("no such group")
        unknown = [u for u in state.roles if u != self.c.user
                   and await self.c.cache.contacts.get(u) is None]
        if unknown:  # members we never talked to: ask the relay, verify, remember
            async with self.c.cache.transaction():
                for user in unknown:
                    await self.c.name_sender(user, spoke=False)
        handles = {}
        for user in state.roles:
            contact = await self.c.cache.contacts.get(user)
            handles[user] = self.c.handle if user == self.c.user else (
                contact.handle if contact else None)
        return GroupInfo(group, state.name, state.topic, state.announce, state.version,
                         dict(state.roles), handles, state.roles.get(self.c.user),
                         _avatar(state.avatar))

    async def list(self) -> list[GroupInfo]:
        out = []
        for group in await self.c.cache.groups.ids():
            row = await self.c.cache.groups.state(group)
            if row is not None and not row[2]:
                out.append(await self.info(group))
        return out

    # --- changes ------------------------------------------------------------------------

    async def create(self, name: str, handles: builtins.list[str], *,
                     announce: bool = False) -> bytes:
        members = [(await self.c.resolve(h)).user for h in handles]
        group = os.urandom(16)
        state = GroupState(group)
        key = os.urandom(META_KEY_LEN)
        try:
            sealed = seal_meta(key, group, msgspec.convert({"name": name}, GroupMeta))
        except msgspec.ValidationError:
            raise GroupError("a group name is 1 to 100 characters") from None
        async with self.c.cache.transaction():
            await self._set_meta_key(group, key)
        await self._submit(state, "create", sealed=sealed, members=members,
                           announce=True if announce else None)
        async with self.c.cache.transaction():
            await self._send_key(group, members)
        await self.c._flush_quietly()
        return group

    async def add(self, group: bytes, handles: builtins.list[str]) -> None:
        members = [(await self.c.resolve(h)).user for h in handles]
        state = await self.state(group)
        if state is not None and state.gate:
            await self.c.wallet.check_gate(state.gate, members)  # NFT-gated: proof first
        await self._change(group, "add", members=members)
        async with self.c.cache.transaction():
            await self._send_key(group, members)
        await self.c._flush_quietly()

    async def remove(self, group: bytes, handles: builtins.list[str]) -> None:
        members = [(await self.c.resolve(h)).user for h in handles]
        await self._change(group, "remove", members=members)
        await self._rotate_meta_key(group)

    async def _rotate_meta_key(self, group: bytes) -> None:
        """After a removal: the metadata sealed again under a new key, sent to those who
        remain, so the removed members' copy opens no later name or topic."""
        state = await self.state(group)
        if state is None or not state.sealed or await self._meta_key(group) is None:
            return
        key = os.urandom(META_KEY_LEN)
        sealed = seal_meta(key, group, GroupMeta(name=state.name, topic=state.topic,
                                                 avatar=state.avatar))
        await self._change(group, "meta", sealed=sealed)
        async with self.c.cache.transaction():
            await self._set_meta_key(group, key)
            await self._send_key(group, [u for u in state.roles if u != self.c.user])
        await self.c._flush_quietly()

    async def leave(self, group: bytes) -> None:
        await self._change(group, "leave")

    async def set_role(self, group: bytes, handle: str, role: str) -> None:
        if role not in (OWNER, ADMIN, MEMBER):
            raise GroupError(f"unknown role {role!r}")
        user = (await self.c.resolve(handle)).user
        await self._change(group, "role", members=[user], role=role)

    async def update(self, group: bytes, *, name: str | None = None, topic: str | None = None,
                     announce: bool | None = None) -> None:
        await self._change_meta(group, name=name, topic=topic, announce=announce)

    async def _change_meta(self, group: bytes, *, announce: bool | None = None,
                           **meta: str | bytes | None) -> None:
        """A ``meta`` change: sealed for a group whose metadata is sealed."""
        state = await self.state(group)
        if state is None:
            raise GroupError("no such group")
        changed = {k: v for k, v in meta.items() if v is not None}
        sealed = await self._sealed_meta(group, state, **changed) if changed else None  # type: ignore[arg-type]
        if sealed is not None:
            await self._change(group, "meta", sealed=sealed, announce=announce)
        else:
            await self._change(group, "meta", announce=announce, **meta)

    async def set_avatar(self, group: bytes, image: Path | None) -> MediaRef | None:
        """Give the group a picture (admins): the image, shrunk to at most 512 px, is sealed
        and uploaded like an attachment and its reference goes into a signed ``meta``
        change (sealed with the group's metadata key, like the name). ``None`` removes it."""
        if image is None:
            await self._change_meta(group, avatar=b"")
            return None
        from . import imaging, media  # Pillow: only when a picture is set
        try:
            data = image.read_bytes()
        except OSError as exc:
            raise GroupError(f"cannot read {image}: {exc.strerror or exc}") from None
        try:
            small = imaging.thumbnail(data, (512, 512))
            fmt = imaging.image_info(small)[0]
        except imaging.ImageError as exc:
            raise GroupError(f"{image.name} is not an image we can use: {exc}") from None
        with tempfile.TemporaryDirectory(prefix="tenchat-") as tmp:
            path = Path(tmp) / f"avatar.{fmt.lower()}"
            path.write_bytes(small)
            ref = await media.upload(self.c.connection, path)
        await self._change_meta(group, avatar=_ref_enc.encode(ref))
        return ref

    async def save_avatar(self, group: bytes, out: Path) -> int:
        """Download the group's picture to ``out`` (its hash checked); the bytes written."""
        info = await self.info(group)
        if info.avatar is None:
            raise GroupError(f"{info.name} has no picture")
        from . import media
        return await media.download(self.c.connection, info.avatar, out)

    async def _change(self, group: bytes, op: str, **fields: object) -> None:
        state = await self.state(group)
        if state is None:
            raise GroupError("no such group")
        try:
            await self._submit(state, op, **fields)
        except RelayError as exc:
            if exc.code != ErrorCode.PROTOCOL:
                raise
            # We are behind the relay's version: catch up on the signed chain, retry once.
            await self._catch_up(group)
            state = await self.state(group)
            assert state is not None
            await self._submit(state, op, **fields)

    async def _submit(self, state: GroupState, op: str, **fields: object) -> None:
        change = GroupChange(group=state.group, version=state.version + 1, prev=state.head,
                             actor=self.c.user, at=_now(), op=op,
                             **fields)  # type: ignore[arg-type]
        record = sign_change(change, self.c.identity.sign)
        trial = copy.deepcopy(state)
        try:
            trial.apply(record)  # the same rules the relay applies: a clear error first
        except ProtocolError as exc:
            raise GroupError(exc.message) from None
        conn = await self.c.connection()
        await conn.request(f.GroupChangeReq, record=record)
        async with self.c.cache.transaction():
            await self._store_change(state, record, [])

    async def _store_change(self, before: GroupState, record: bytes,
                            events: builtins.list[Event]) -> GroupState:
        """Apply a verified next record to our copy; rotate our sender key when someone left."""
        after = copy.deepcopy(before)
        change = after.apply(record)
        await self._reveal(after)
        gone = [u for u in before.roles if u not in after.roles]
        left = self.c.user not in after.roles and change.op != "create"
        await self.c.cache.groups.save(after.group, _dump(after), [(change.version, record)],
                                      left=left)
        if gone:
            # Whoever left must not read what comes next: a fresh chain, sent to who remains.
            await self.c.cache.groups.set_my_sender_key(after.group, None)
        events.append(ConversationChanged(after.group))
        return after

    async def _catch_up(self, group: bytes) -> GroupState:
        """Fetch the signed records we lack from the relay and verify them one by one."""
        async with self.c.cache.transaction():
            state = await self._fetch_chain(group, await self.state(group), [])
        return state

    # --- sending ------------------------------------------------------------------------

    async def queue(self, group: bytes, msg_id: bytes, body: bytes, *,
                    expires_at: int = 0) -> None:
        """Encrypt content for the group into the outbox (caller holds the cache lock and
        commits). Our sender key goes first, 1:1, to every member who lacks it."""
        row = await self.c.cache.groups.state(group)
        if row is None:
            raise GroupError("no such group")
        state, own, left = _load(row[0]), row[1], row[2]
        role = state.roles.get(self.c.user)
        if left or role is None:
            raise GroupError("you are not a member of this group")
        if not can_post(role, state.announce):
            raise GroupError("only admins may post in this announcement group")
        # A member's device list changed since we last looked: a new chain (rotate_with).
        await self.c.refresh_stale(list(state.roles), MEMBER_DEVICES_MAX_AGE_MS)
        row = await self.c.cache.groups.state(group)
        own = row[1] if row is not None else None
        key = SenderKey.from_bytes(own) if own else SenderKey.create(group)
        sent = await self.c.cache.groups.sender_key_sent(group, key.chain_id)
        # Our own other devices read our posts too: they need our chain as well.
        mine = len(await self.c.devices_of(self.c.user, fresh=False)) > 1
        missing = [u for u in state.roles if u not in sent and (u != self.c.user or mine)]
        if missing:
            dist = c.encode_content(c.SenderKeyDist(group=group,
                                                    dist=key.distribution().to_bytes()))
            for user in missing:  # (our other devices have chains of their own)
                await self.c.queue_content(user, os.urandom(16), dist, sync=False)
            await self.c.cache.groups.mark_sender_key_sent(group, missing, key.chain_id)
        envelope = key.encrypt(pad(body), group + self.c.user)
        await self.c.cache.groups.set_my_sender_key(group, key.to_bytes())
        await self.c.cache.outbox.add(msg_id, group, envelope, _now(), kind="group",
                                      expires_at=expires_at)

    async def learn_missing(self) -> int:
        """Verify and keep the chain of every group the relay says our account is in and
        we don't know yet (a device linked after its account joined them: the join is
        before its cursor); how many."""
        conn = await self.c.connection()
        listed = await conn.request(f.GroupList)
        assert isinstance(listed, f.Groups)
        known = set(await self.c.cache.groups.ids())
        count = 0
        for summary in listed.groups:
            if summary.group not in known:
                try:
                    await self._catch_up(summary.group)
                    count += 1
                except (ProtocolError, RelayError) as exc:
                    log.warning("a group of ours did not verify: %s", exc)
        return count

    async def rotate_with(self, user: bytes) -> int:
        """Drop our sender chain in every group ``user`` is in, so the next post starts a
        new one sent to the devices ``user`` has now: their device list changed (a removed
        device must not read what comes next; a new one needs a key). In the open
        transaction; how many groups."""
        count = 0
        for group in await self.c.cache.groups.ids():
            row = await self.c.cache.groups.state(group)
            if row is not None and row[1] is not None and user in _load(row[0]).roles:
                await self.c.cache.groups.set_my_sender_key(group, None)
                count += 1
        return count

    async def typing_envelope(self, group: bytes, active: bool) -> bytes | None:
        """A typing indicator sealed under our sender key (the caller holds the cache lock
        and commits), or None when there is nothing to send: not a member, not allowed to
        post, a group too big for typing indicators, or no sender key shared yet (typing
        never waits on a key distribution)."""
        row = await self.c.cache.groups.state(group)
        if row is None or not row[1] or row[2]:
            return None
        state = _load(row[0])
        role = state.roles.get(self.c.user)
        if role is None or not can_post(role, state.announce) or \
                len(state.roles) > TYPING_MAX_MEMBERS:
            return None
        key = SenderKey.from_bytes(row[1])
        envelope = key.encrypt(pad(c.encode_content(c.Typing(active=active))),
                               group + self.c.user)
        await self.c.cache.groups.set_my_sender_key(group, key.to_bytes())
        return envelope

    # --- receiving ----------------------------------------------------------------------

    async def receive_one(self, item: f.GroupDeliver, new: builtins.list[MessageRow],
                          receipts: Receipts, events: builtins.list[Event]) -> None:
        """One log entry (the caller holds the cache lock and commits): the routing rules
        decide (client/group_rules.py), this acts."""
        if item.change:
            await self._receive_change(item, events)
            return
        state = await self.state(item.group)
        if state is None:  # e.g. on a device linked after we joined: its chain first
            try:
                state = await self._fetch_chain(item.group, None, events)
            except (ProtocolError, RelayError) as exc:
                log.warning("dropped a post of a group we can't verify: %s", exc)
                return
        # Our own post is in the cache already, unless another device of ours sent it.
        have = (item.sender == self.c.user and item.gseq != 0
                and await self.c.cache.messages.get(item.group, item.msg) is not None)
        match route(state, self.c.user, item, have=have):
            case Route.DROP_NON_MEMBER | Route.DROP_ANNOUNCE as dropped:
                log.warning("dropped %s (%s)", dropped.value, fingerprint(item.sender))
            case Route.EPHEMERAL:
                await self._receive_ephemeral(state, item, events)
            case Route.POST:
                await self._decrypt_post(state, item.gseq, item.sender, item.msg, item.at,
                                         item.body, new, receipts, events)

    async def _decrypt_post(self, state: GroupState, gseq: int, sender: bytes, msg: bytes,
                            at: int, body: bytes, new: builtins.list[MessageRow],
                            receipts: Receipts, events: builtins.list[Event]) -> None:
        group = state.group
        try:
            chain = message_chain_id(body)
        except CryptoError:
            log.warning("dropped a malformed group message")
            return
        raw = await self.c.cache.groups.sender_key(group, sender, chain)
        if raw is None:  # its sender key hasn't arrived yet (it travels 1:1): keep it
            await self.c.cache.groups.add_pending(group, PendingEntry(gseq, sender, msg, at, body))
            return
        key = SenderKey.from_bytes(raw)
        try:
            plaintext = key.decrypt(body, group + sender)
            content = c.decode_content(plaintext)
        except (CryptoError, msgspec.MsgspecError) as exc:
            log.warning("dropped an undecryptable group message from %s: %s",
                        fingerprint(sender), type(exc).__name__)
            return
        await self.c.cache.groups.put_sender_key(group, sender, chain, key.to_bytes())
        if sender == self.c.user:  # posted by another device of ours
            await self.c.apply_own(group, content, events)
            return
        await self.c.apply_content(group, sender, content, state, new, receipts, events)

    async def _receive_ephemeral(self, state: GroupState, item: f.GroupDeliver,
                                 events: builtins.list[Event]) -> None:
        """An unstored push (``gseq`` 0): only a typing indicator is accepted, so nothing a
        member sends this way can become a message the others never see in the log."""
        try:
            chain = message_chain_id(item.body)
            raw = await self.c.cache.groups.sender_key(state.group, item.sender, chain)
            if raw is None:
                return  # their key hasn't reached us yet: typing never waits for it
            key = SenderKey.from_bytes(raw)
            content = c.decode_content(key.decrypt(item.body, state.group + item.sender))
        except (CryptoError, msgspec.MsgspecError):
            return
        await self.c.cache.groups.put_sender_key(state.group, item.sender, chain, key.to_bytes())
        if isinstance(content, c.Typing):
            events.append(TypingChanged(state.group, content.active, item.sender))

    async def _receive_change(self, item: f.GroupDeliver, events: builtins.list[Event]) -> None:
        try:
            change, _ = decode_signed(item.body)
        except ProtocolError as exc:
            log.warning("dropped a group record: %s", exc.message)
            return
        state = await self.state(item.group)
        try:
            match route_change(state, change.version):
                case Route.CHANGE_FETCH:  # new to us (we were added), or we missed some
                    await self._fetch_chain(item.group, state, events)
                case Route.CHANGE_NEXT:
                    assert state is not None
                    await self._store_change(state, item.body, events)
        except (ProtocolError, RelayError) as exc:
            # A forged or out-of-order change: our copy stays as it was.
            log.warning("rejected a group change: %s", exc)

    async def _fetch_chain(self, group: bytes, state: GroupState | None,
                           events: builtins.list[Event]) -> GroupState:
        """Fetch and verify the records after ours (caller holds the cache lock)."""
        state = state or GroupState(group)
        conn = await self.c.connection()
        while True:
            history = await conn.request(f.GroupInfo, group=group, after_version=state.version)
            assert isinstance(history, f.GroupHistory)
            for record in history.records:
                state = await self._store_change(state, record, events)
            if not history.more:
                return state

    async def receive_distribution(self, sender: bytes, content: c.SenderKeyDist,
                                   new: builtins.list[MessageRow], receipts: Receipts,
                                   events: builtins.list[Event]) -> None:
        """A member's sender key arrived over our pairwise session."""
        state = await self.state(content.group)
        if state is None:
            # Their key can come before the record that added us (the 1:1 queue drains
            # first): learn the group from its signed chain now.
            try:
                state = await self._fetch_chain(content.group, None, events)
            except (ProtocolError, RelayError) as exc:
                log.warning("ignored a sender key for an unknown group: %s", exc)
                return
        if sender not in state.roles:
            log.warning("ignored a sender key for a group we don't share with %s",
                        fingerprint(sender))
            return
        try:
            dist = SenderKeyDistribution.from_bytes(content.dist)
            if dist.group_id != content.group:
                raise CryptoError("sender key of another group")
            key = SenderKey.from_distribution(dist)
        except CryptoError as exc:
            log.warning("bad sender key from %s: %s", fingerprint(sender), exc)
            return
        await self.c.cache.groups.put_sender_key(content.group, sender, key.chain_id,
                                                 key.to_bytes())
        waiting = await self.c.cache.groups.take_pending(content.group, sender)
        for gseq, who, msg, at, body in waiting:
            await self._decrypt_post(state, gseq, who, msg, at, body, new, receipts, events)


def _now() -> int:
    from .base import now_ms

    return now_ms()
