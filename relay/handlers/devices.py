"""Handlers of accounts' device lists and of the linking rendezvous (common.devices).

The relay checks a device list completely (the account's signature, every device's
binding, a version above the stored one) before storing it, and clients check it again:
the relay can't add a device to anyone's account, only withhold or replay lists.
"""

from __future__ import annotations

from tenchat.common import devices
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import (
    DevicesGet,
    DevicesInfo,
    DevicesPut,
    LinkBlob,
    LinkPut,
    LinkTake,
    Ok,
    PublishPrekeys,
)

from ..session import Later, Session, check_authenticated
from ..storage import HandleRecord, Store
from .table import Answer, HandlerTable

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()

# What an identity without a handle may ask of an invite-only relay besides `register`:
# a new device links itself (its account holds the handle) and publishes its keys.
LINKING = (LinkPut, LinkTake, DevicesGet, DevicesPut, PublishPrekeys)


async def account_handle(store: Store, user: bytes) -> tuple[bytes, HandleRecord | None]:
    """The account ``user`` acts for — itself, or for a device listed in an account's
    device list, that account (the device signs in as itself) — and its handle."""
    record = await store.device_list(user)
    account = devices.open_list(record).account if record is not None else user
    return account, await store.handle_by_user(account)


@HANDLERS.on(DevicesPut)
async def devices_put(session: Session, frame: DevicesPut) -> Answer:
    user = check_authenticated(session)
    dl = devices.open_list(frame.record)
    if user != dl.account and user not in dl.device_keys():
        raise ProtocolError(ErrorCode.FORBIDDEN,
                            "a device list is published by its account or one of its devices")
    stored = session.store.put_device_list(dl.account, dl.version, dl.device_keys(),
                                           frame.record)
    return Later(stored, lambda _: Ok(id=frame.id))


@HANDLERS.on(DevicesGet)
async def devices_get(session: Session, frame: DevicesGet) -> Answer:
    check_authenticated(session)
    record = await session.store.device_list(frame.user)
    if record is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "no device list names this key")
    return DevicesInfo(id=frame.id, record=record)


@HANDLERS.on(LinkPut)
async def link_put(session: Session, frame: LinkPut) -> Answer:
    user = check_authenticated(session)
    # In the store, not this node's memory: the other device may reach another node.
    stored = session.store.put_link(frame.slot, frame.blob, user)
    return Later(stored, lambda _: Ok(id=frame.id))


@HANDLERS.on(LinkTake)
async def link_take(session: Session, frame: LinkTake) -> Answer:
    check_authenticated(session)
    blob = await session.store.take_link(frame.slot)
    if blob is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "nothing in this rendezvous slot (yet)")
    return LinkBlob(id=frame.id, blob=blob)
