"""Peers: handles resolved and pinned to identity keys, key changes the user decides,
blocks, verification, safety numbers.
"""

from __future__ import annotations

import contextlib
import logging

from ..common import frames as f
from ..common.crypto.safety import safety_number
from ..common.errors import ErrorCode, ProtocolError, TenchatError
from ..common.identity import (
    fingerprint,
    handle_message,
    normalize_handle,
    verify_signature,
)
from .base import ClientBase, KeyChanged, now_ms
from .cache import ContactRow
from .connection import ConnectionLost, RelayError, RelayUnreachable
from .conv import is_user
from .errors import PeerError
from .events import (
    ConversationChanged,
)

__all__ = ['ContactBook']

log = logging.getLogger("tenchat.client")


class ContactBook(ClientBase):
    """The client's contacts (``Client.resolve`` and friends)."""

    async def resolve(self, peer: str) -> ContactRow:
        """The contact for a handle, looked up and its binding verified on first use."""
        handle = normalize_handle(peer)
        known = await self.cache.contacts.by_handle(handle)
        if known is not None:
            return known
        conn = await self.connection()
        try:
            info = await conn.request(f.Lookup, handle=handle)
        except RelayError as exc:
            if exc.code == ErrorCode.NOT_FOUND:
                raise PeerError(f"no user @{handle} on {self.relay_url}") from None
            raise
        assert isinstance(info, f.HandleInfo)
        # The relay is untrusted: the binding must be signed by the key it names.
        if info.handle != handle or not verify_signature(
            info.user, handle_message(handle, info.user), info.sig
        ):
            raise PeerError(f"the relay's record for @{handle} is not validly signed")
        async with self.cache.transaction():
            await self.cache.contacts.remember(info.user, handle, now_ms())
        contact = await self.cache.contacts.get(info.user)
        assert contact is not None
        return contact

    async def name_sender(self, user: bytes, *, spoke: bool = True) -> None:
        """Learn the handle of a key we have not seen before (best effort), from the
        relay's signed ``whois`` binding, which the key itself signs, so anyone can make
        one for any handle. A handle already pinned here to another key is never moved on
        the relay's word (security review H1): when ``spoke`` (a message came from this
        key) it becomes a pending key change, shown on every message from the key and
        held back from sending until the user accepts it (``contacts accept-key``);
        without a message from the key (group members, social records) it is ignored."""
        if await self.cache.contacts.get(user) is not None:
            return
        handle: str | None = None
        try:
            conn = await self.connection()
            info = await conn.request(f.Whois, user=user)
            if isinstance(info, f.HandleInfo) and verify_signature(
                user, handle_message(info.handle, user), info.sig
            ):
                handle = normalize_handle(info.handle)
        except (RelayError, ConnectionLost, ProtocolError):
            pass
        if handle is not None and not spoke:
            pinned = await self.cache.contacts.by_handle(handle)
            if pinned is not None and pinned.user != user:
                handle = None
        if handle is None:
            await self.cache.contacts.remember(user, None, now_ms())
            return
        old = await self.cache.contacts.record_key_change(handle, user, now_ms())
        if old is not None:
            log.warning("the relay says @%s has a new identity key (%s -> %s); pending until "
                        "accepted", handle, fingerprint(old.user), fingerprint(user))

    async def pending_key(self, peer: str) -> tuple[ContactRow, ContactRow | None]:
        """``peer``'s pinned contact and its pending key change, if any."""
        contact = await self.resolve(peer)
        return contact, await self.cache.contacts.pending_key(contact.user)

    async def set_verified(self, peer: str, verified: bool) -> ContactRow:
        """Record (or take back) that the user compared safety numbers with ``peer``
        (``contacts verify --mark``). Marking the current key verified also accepts it
        if it had changed."""
        contact = await self.resolve(peer)
        async with self.cache.transaction():
            await self.cache.contacts.set_flag(contact.user, "verified", verified)
            if verified:
                await self.cache.contacts.accept_key(contact.user)
            await self.tell_devices("verified", verified, contact.user)
        await self.send_devices_soon()
        self.emit(ConversationChanged(contact.user))
        return (await self.cache.contacts.get(contact.user)) or contact

    async def accept_key(self, peer: str) -> ContactRow:
        """Accept ``peer``'s pending identity key change: the handle moves to the new key
        (unverified) and sending to it resumes. TenchatError if there is none."""
        contact, pending = await self.pending_key(peer)
        if pending is None:
            raise TenchatError(f"@{contact.handle}'s identity key has not changed")
        async with self.cache.transaction():
            await self.cache.contacts.accept_key(pending.user)
        self.emit(ConversationChanged(pending.user))
        self.emit(ConversationChanged(contact.user))
        return (await self.cache.contacts.get(pending.user)) or pending

    async def reject_key(self, peer: str) -> ContactRow:
        """Refuse ``peer``'s pending identity key change: the handle stays with the key it
        was pinned to and the new key's messages show under its fingerprint."""
        contact, pending = await self.pending_key(peer)
        if pending is None:
            raise TenchatError(f"@{contact.handle}'s identity key has not changed")
        async with self.cache.transaction():
            await self.cache.contacts.reject_key(pending.user)
        self.emit(ConversationChanged(pending.user))
        return contact

    async def check_key_accepted(self, peer: bytes, *, typed: bool = True) -> None:
        """KeyChanged if ``peer`` (a user id) is a pending new key the user has not
        accepted, or (``typed``: content the user wrote) a contact whose handle has a
        pending key change: the user must decide which key is theirs first."""
        if not is_user(peer):
            return
        contact = await self.cache.contacts.get(peer)
        if contact is not None and contact.needs_acceptance:
            raise KeyChanged(contact)
        if typed and contact is not None and contact.handle is not None:
            pending = await self.cache.contacts.pending_key(peer)
            if pending is not None:
                raise KeyChanged(pending)

    async def contacts(self) -> list[ContactRow]:
        return await self.cache.contacts.all()

    async def add_contact(self, peer: str) -> ContactRow:
        contact = await self.resolve(peer)
        async with self.cache.transaction():
            await self.cache.contacts.set_flag(contact.user, "added", True)
            await self.tell_devices("added", True, contact.user)
        await self.send_devices_soon()
        return (await self.cache.contacts.get(contact.user)) or contact

    async def moderate(self, action: str, target: str, reason: str = "") -> bytes:
        """A moderator's or admin's action on the relay (the relay checks the role):
        remove_post / remove_comment (target: the full hex id), ban / unban (target: a
        handle). The target's bytes."""
        if action not in f.MODERATE_ACTIONS:
            raise TenchatError(f"unknown action {action!r}; one of "
                               + ", ".join(a.replace("_", "-") for a in f.MODERATE_ACTIONS))
        if action in ("ban", "unban"):
            target_id = (await self.resolve(target)).user
        else:
            try:
                target_id = bytes.fromhex(target)
            except ValueError:
                raise TenchatError("give the full id in hex") from None
            if not 1 <= len(target_id) <= 64:
                raise TenchatError("give the full id in hex")
        conn = await self.connection()
        await conn.request(f.Moderate, action=action, target=target_id, reason=reason)
        return target_id

    async def set_blocked(self, peer: str, blocked: bool) -> ContactRow:
        contact = await self.resolve(peer)
        async with self.cache.transaction():
            await self.cache.contacts.set_flag(contact.user, "blocked", blocked)
            if blocked:  # their copy of our access key stops working (sealed_sender.py)
                await self.sealed_sender.rotate()
            await self.tell_devices("blocked", blocked, contact.user)
        await self.tell_relay_block(contact.user, blocked)
        if blocked:  # the relay learns the new access key; the other contacts get it
            with contextlib.suppress(ConnectionLost, RelayUnreachable, RelayError):
                await self.sealed_sender.register(await self.connection())
                await self.flush_outbox()
        await self.send_devices_soon()
        self.emit(ConversationChanged(contact.user))
        return (await self.cache.contacts.get(contact.user)) or contact

    async def safety_number(self, peer: str) -> tuple[ContactRow, str]:
        contact = await self.resolve(peer)
        return contact, safety_number(self.user, contact.user)

    async def display_name(self, user: bytes) -> str:
        """A handle, or for a pending key change the handle it claims marked
        ``(NEW KEY)``, or the key's fingerprint."""
        contact = await self.cache.contacts.get(user)
        if contact is not None and contact.handle:
            return contact.handle
        if contact is not None and contact.claimed:
            return f"{contact.claimed} (NEW KEY)"
        return fingerprint(user)
