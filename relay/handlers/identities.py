"""Handlers of handles (register, lookup, whois) and prekeys (publish, fetch a bundle)."""

from __future__ import annotations

from tenchat.common import identity
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import (
    Bundle,
    FetchBundle,
    HandleInfo,
    Lookup,
    PrekeyStatus,
    PublishPrekeys,
    Register,
    Whois,
)

from ..admin import register_invited, role_of
from ..session import Later, Session, check_authenticated
from ..storage import BundleRecord, HandleRecord
from .table import Answer, HandlerTable, rate_limited

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()


def _handle_info(rid: int, rec: HandleRecord) -> HandleInfo:
    return HandleInfo(id=rid, handle=rec.handle, user=rec.user, sig=rec.sig)



@HANDLERS.on(Register)
async def register(session: Session, frame: Register) -> Answer:
    user = check_authenticated(session)
    handle = identity.normalize_handle(frame.handle)
    if not identity.verify_signature(user, identity.handle_message(handle, user), frame.sig):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "sig is not over handle_message(handle, user)")
    await _may_register(session, user, handle, frame)
    if session.config.registration == "invite-only":

        return register_invited(session, frame, handle)

    def answer(rec: HandleRecord) -> HandleInfo:

        session.handle = rec.handle
        session.role = role_of(session.config, user, rec.handle)
        return _handle_info(frame.id, rec)

    return Later(session.store.register(user, handle, frame.sig), answer)


async def _may_register(session: Session, user: bytes, handle: str, frame: Register) -> None:
    """The registration checks of issue 12: reserved handles (admins only, or a handle
    the config itself names in ``admins`` / ``moderators``), the
    connection's proof-of-work, the address's handle_rate. The owner registering its own
    handle again passes (nothing changes)."""
    rec = await session.store.handle_by_user(user)
    if rec is not None and rec.handle == handle:
        return
    config = session.config
    if (handle in config.reserved_handles and session.role != "admin"
            and "@" + handle not in config.admins + config.moderators):
        raise ProtocolError(ErrorCode.HANDLE_RESERVED, f"@{handle} is reserved on this relay")
    bits = session.register_pow
    # An empty nonce never counts: "no proof-of-work" must be refused every time, not pass
    # by luck one time in 2**bits.
    if bits and (not frame.pow
                 or not identity.pow_ok(session.challenge, user, handle, frame.pow, bits)):
        raise ProtocolError(ErrorCode.POW_REQUIRED,
                            f"this relay asks a proof-of-work of {bits} bits (welcome.pow)")
    if (config.handle_rate and not session.guards.is_exempt(session.address)
            and (wait := session.guards.registrations.take(session.network))):
        raise rate_limited("too many handle registrations from this address", wait)


@HANDLERS.on(Lookup)
async def lookup(session: Session, frame: Lookup) -> Answer:
    check_authenticated(session)
    handle = identity.normalize_handle(frame.handle)
    rec = await session.store.handle_by_name(handle)
    if rec is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no identity holds @{handle}")
    return _handle_info(frame.id, rec)


@HANDLERS.on(Whois)
async def whois(session: Session, frame: Whois) -> Answer:
    check_authenticated(session)
    rec = await session.store.handle_by_user(frame.user)
    if rec is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "this identity holds no handle")
    return _handle_info(frame.id, rec)


# --- prekeys -----------------------------------------------------------------------------


@HANDLERS.on(PublishPrekeys)
async def publish_prekeys(session: Session, frame: PublishPrekeys) -> Answer:
    user = check_authenticated(session)
    if frame.user != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "prekeys can only be published for oneself")
    spk = frame.spk
    if spk is not None and not identity.verify_signature(
        user, identity.signed_prekey_message(spk.pub), spk.sig
    ):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "spk.sig does not verify")
    return Later(
        session.store.publish_prekeys(user, spk, frame.otks),
        lambda count: PrekeyStatus(id=frame.id, otk_count=count),
    )


@HANDLERS.on(FetchBundle)
async def fetch_bundle(session: Session, frame: FetchBundle) -> Answer:
    user = check_authenticated(session)
    guards = session.guards
    if wait := guards.bundles.take(user):
        raise rate_limited("too many prekey bundles fetched", wait)
    # Past the target's otk_rate the bundle has no one-time prekey (X3DH works without
    # one): refusing instead would let anyone stop others from reaching the target.
    with_otk = frame.user == user or not guards.otks.take(frame.user)

    def answer(rec: BundleRecord | None) -> Bundle:
        if rec is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "this identity has published no prekeys")
        if rec.otk is not None and rec.otk_count < session.config.otk_low:
            session.hub.prekeys_low(frame.user, rec.otk_count)
        return Bundle(id=frame.id, user=frame.user, spk=rec.spk, otk=rec.otk)

    return Later(session.store.take_bundle(frame.user, with_otk), answer)
