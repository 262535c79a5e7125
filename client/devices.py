"""Accounts and devices in the client core (issue 16; docs/crypto.md "Devices").

The **device addressing layer**: which relay queues a piece of 1:1 content goes to. The
envelope's contents are not this module's business — ``routes`` says, for content queued
to an account, which devices get a copy (every device of the peer, and every other
device of our own account, the latter wrapped as ``Sync``) under which relay message id;
``account_of`` says which account a delivering device belongs to. Both trust nothing but
device lists signed by the account key (common/devices.py), checked here on every fetch.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

from ..common import content as c
from ..common import devices as dv
from ..common import frames as f
from ..common.crypto.keys import IdentityKey
from ..common.errors import ErrorCode, ProtocolError, TenchatError
from ..common.identity import fingerprint
from .addressing import Route, copy_id
from .base import ClientBase, now_ms
from .cache.devices import Alert
from .connection import ConnectionLost, RelayConnection, RelayError, RelayUnreachable
from .events import DevicesChanged

__all__ = ["DeviceBook", "Route", "copy_id", "DeviceRow", "DevicesChanged"]

log = logging.getLogger("tenchat.client")


@dataclass(frozen=True, slots=True)
class DeviceRow:
    key: bytes
    name: str
    added: int
    this: bool  # the device this client runs on


# How long a key the relay listed in no device list is taken as its own account without
# asking again (a receiving batch from someone before devices asks once, not per message).
# A new device of an account is listed before it sends anything, so it is never one.
UNLISTED_TTL_MS = 60_000
UNREACHABLE_PAUSE_MS = 10_000  # after a failed connect, compose offline this long


def default_device_name() -> str:
    return (socket.gethostname().split(".")[0] or "device")[:dv.MAX_DEVICE_NAME]


class DeviceBook(ClientBase):
    """Device lists: fetch, verify, remember; fan-out routes; removal."""

    device: IdentityKey  # this device's key (the account key on a first device)
    devices_checked: dict[bytes, int]  # account -> when this process last asked (clock ms)
    relay_unreachable_at: int | None  # when _reachable last failed to connect (clock ms)

    @property
    def device_id(self) -> bytes:
        return self.device.public

    # --- lists ----------------------------------------------------------------------------

    async def held_list(self, account: bytes) -> dv.DeviceList | None:
        held = await self.cache.devices.held(account)
        return dv.open_list(held[0], account=account) if held else None

    async def devices_of(self, account: bytes, *, fresh: bool = True) -> list[bytes]:
        """The account's devices: its newest verified list (asked of the relay first
        when ``fresh`` and it can be reached), else the account key alone."""
        held = await self.refresh_devices(account) if fresh else await self.held_list(account)
        return held.device_keys() if held is not None else dv.implicit_list(account)

    async def _reachable(self) -> RelayConnection | None:
        """The relay connection, or None offline — then composing goes on with the held
        lists, and a relay found unreachable is not tried again for a while (each
        message composed offline would wait for a connect otherwise)."""
        failed = self.relay_unreachable_at
        if (self._conn is None or self._conn.closed.is_set()) and failed is not None \
                and self.clock() - failed < UNREACHABLE_PAUSE_MS:
            return None
        try:
            return await self.connection()
        except (RelayUnreachable, ConnectionLost, RelayError) as exc:
            log.info("device lists not refreshed: %s", exc)
            self.relay_unreachable_at = self.clock()
            return None

    async def refresh_stale(self, accounts: list[bytes], max_age_ms: int) -> None:
        """Refresh the lists of those ``accounts`` not checked in the last ``max_age_ms``
        (by this process): group members, whose lists a group post does not otherwise
        fetch. In the open transaction."""
        now = self.clock()
        for account in accounts:
            last = self.devices_checked.get(account)
            if account != self.user and (last is None or now - last >= max_age_ms):
                await self.refresh_devices(account)

    async def refresh_devices(self, account: bytes) -> dv.DeviceList | None:
        """Ask the relay for the account's list and keep it if it verifies and succeeds
        the held one; the held (or no) list otherwise. In the open transaction."""
        conn = await self._reachable()
        if conn is None:
            return await self.held_list(account)
        try:
            info = await conn.request(f.DevicesGet, user=account)
            self.devices_checked[account] = self.clock()
        except RelayError as exc:
            if exc.code == ErrorCode.NOT_FOUND:
                self.devices_checked[account] = self.clock()
            else:
                log.info("device list of %s not fetched: %s", fingerprint(account), exc)
            return await self.held_list(account)
        except ConnectionLost:
            return await self.held_list(account)
        assert isinstance(info, f.DevicesInfo)
        return await self.accept_list(account, info.record)

    async def accept_list(self, account: bytes, record: bytes) -> dv.DeviceList | None:
        """Keep ``record`` as the account's list if it verifies (the account's signature,
        every device's binding) and succeeds the held one; otherwise leave an alert and
        keep the held one. Returns the list held afterwards."""
        held = await self.held_list(account)
        now = now_ms()
        try:
            new = dv.open_list(record, account=account)
            changed = dv.check_successor(held, new)
        except ProtocolError as exc:
            await self._alert(account, now, f"refused a device list from the relay: "
                                            f"{exc.message}")
            return held
        if not changed:
            return held
        before = held.device_keys() if held is not None else dv.implicit_list(account)
        added = [d for d in new.devices if d.key not in before]
        removed = [d for d in before if d not in new.device_keys()]
        await self.cache.devices.put(account, new.version, record, new.device_keys(), now)
        if added or removed:
            # Group sender keys are per device: a new chain for who is there now.
            await self.groups.rotate_with(account)
        # A change is news about someone we have written with (a first look is not).
        known = held is not None or account == self.user or bool(
            await self.cache.sessions.of(account))
        if known and (added or removed):
            parts = [f"added {d.name!r} ({fingerprint(d.key)})" for d in added
                     if not (held is None and d.key == account)]
            parts += [f"removed {(held.entry(d).name if held and held.entry(d) else '?')!r} "
                      f"({fingerprint(d)})" for d in removed]
            if parts:
                await self._alert(account, now, "devices changed: " + ", ".join(parts),
                                  level=logging.INFO)
        return new

    async def _alert(self, account: bytes, now: int, text: str, *,
                     level: int = logging.WARNING) -> None:
        who = "your account" if account == self.user else fingerprint(account)
        log.log(level, "%s: %s", who, text)
        await self.cache.devices.alert(account, now, text)
        self.emit(DevicesChanged(account, text))

    async def device_alerts(self, account: bytes | None = None) -> list[Alert]:
        return await self.cache.devices.alerts(account)

    async def account_of(self, device: bytes) -> bytes | None:
        """The account a delivering device belongs to, by verified lists only: the
        device itself for an account that lists no devices (a home from before
        devices); None for a device its account has removed."""
        if device == self.device_id:
            return self.user
        known = await self.cache.devices.account_of(device)
        if known is not None:
            return known
        own = await self.held_list(device)
        if own is not None:  # an account whose own key is no longer one of its devices
            fresh = await self.refresh_devices(device)
            return device if fresh is not None and device in fresh.device_keys() else None
        last = self.devices_checked.get(device)
        if last is not None and self.clock() - last < UNLISTED_TTL_MS:
            return device  # the relay said lately that no list names it: no round trip
        conn = await self._reachable()
        if conn is None:
            return device
        try:
            info = await conn.request(f.DevicesGet, user=device)
        except RelayError as exc:  # not_found; unknown_type from a relay before devices
            if exc.code != ErrorCode.NOT_FOUND:
                log.info("device %s not looked up: %s", fingerprint(device), exc)
            self.devices_checked[device] = self.clock()
            return device  # its own account: it can pass for no one else
        assert isinstance(info, f.DevicesInfo)
        try:
            claimed = dv.open_list(info.record)
        except ProtocolError as exc:
            await self._alert(device, now_ms(), f"refused a device list: {exc.message}")
            return None
        held = await self.accept_list(claimed.account, info.record)
        if held is not None and device in held.device_keys():
            return claimed.account
        return None

    # --- fan-out --------------------------------------------------------------------------

    async def routes(self, peer: bytes, msg_id: bytes, body: bytes, *,
                     sync: bool = True, peer_too: bool = True) -> list[Route]:
        """Where content for the account ``peer`` goes: a copy per device of the peer
        (unless not ``peer_too``), and (with ``sync``) a Sync copy per other device of
        ours. The peer's own key keeps ``msg_id`` as relay id (a home from before devices
        sees no change)."""
        if peer == self.user:  # to our own other devices (a group's sender key)
            return [Route(d, copy_id(msg_id, d), body, True)
                    for d in await self.devices_of(peer) if d != self.device_id]
        out = [Route(d, msg_id if d == peer else copy_id(msg_id, d), body, False)
               for d in await self.devices_of(peer)] if peer_too else []
        if sync and peer != self.user:
            mine = [d for d in await self.devices_of(self.user) if d != self.device_id]
            if mine:
                wrapped = c.encode_content(c.Sync(conv=peer, body=body))
                out += [Route(d, copy_id(msg_id, d), wrapped, True) for d in mine]
        return out

    # --- this account's devices -----------------------------------------------------------

    async def my_devices(self) -> list[DeviceRow]:
        return await self.devices_list(self.user)

    async def devices_list(self, account: bytes) -> list[DeviceRow]:
        """An account's devices, from its newest verified list (asked of the relay)."""
        held = await self.refresh_devices(account)
        if held is None:
            return [DeviceRow(account, "first", 0, self.device_id == account)]
        return [DeviceRow(d.key, d.name, d.added, d.key == self.device_id)
                for d in held.devices]

    async def publish_devices(self, devices: list[dv.DeviceEntry]) -> dv.DeviceList:
        """Sign and publish the next version of our list (the relay stores only a higher
        version), then hold it. In the open transaction."""
        held = await self.refresh_devices(self.user)
        version = (held.version if held is not None else 0) + 1
        record = dv.make_list(self.identity, version, devices)
        conn = await self.connection()
        await conn.request(f.DevicesPut, record=record)
        new = await self.accept_list(self.user, record)
        assert new is not None
        return new

    def first_entry(self, name: str = "first") -> dv.DeviceEntry:
        """The entry of an account's first device, whose key is the account key."""
        return dv.DeviceEntry(key=self.user, name=name, added=0,
                              sig=dv.sign_binding(self.identity, self.user))

    async def remove_device(self, name: str) -> dv.DeviceEntry:
        """Remove a device of this account by name, from any other device: a new list
        without it, signed and published; our sessions with it are deleted, so nothing
        more is encrypted to it from here (and peers stop at their next send)."""
        async with self.cache.transaction():
            held = await self.refresh_devices(self.user)
            if held is None:
                raise TenchatError("this account has one device; there is nothing to remove")
            gone = held.named(name)
            if gone is None:
                raise TenchatError(f"no device named {name!r} "
                                   f"(`tenchat device list` shows them)")
            if gone.key == self.device_id:
                raise TenchatError("this is the device you are on; remove it from another one")
            await self.publish_devices([d for d in held.devices if d.key != gone.key])
            rows = await self.cache.sessions.of(gone.key)
            if rows:
                await self.cache.sessions.delete([row_id for row_id, _ in rows])
        return gone
