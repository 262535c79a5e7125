"""Handlers of sealed sender (docs/protocol.md §5.10): who may send a user sealed
messages, and the sealed send itself, which needs no authenticated connection: the
relay learns the recipient, never the sender."""

from __future__ import annotations

from tenchat.common.crypto.sealed import SEALED_SENDER, access_ok, sealed_queue_id
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import Ok, SealedAccess, SealedSend, Stored

from ..session import Later, Session, check_authenticated
from .table import Answer, HandlerTable, rate_limited

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()


@HANDLERS.on(SealedAccess)
async def sealed_access(session: Session, frame: SealedAccess) -> Answer:
    user = check_authenticated(session)
    if len(frame.verifier) not in (0, 32):
        raise ProtocolError(ErrorCode.MALFORMED, "verifier must be 0 or 32 bytes")
    return Later(session.store.set_sealed_access(user, frame.verifier, frame.anyone),
                 lambda _: Ok(id=frame.id))


@HANDLERS.on(SealedSend)
async def sealed_send(session: Session, frame: SealedSend) -> Answer:
    if session.version is None:
        raise ProtocolError(ErrorCode.PROTOCOL, "say hello first")
    if len(frame.access) not in (0, 16):
        raise ProtocolError(ErrorCode.MALFORMED, "access must be 0 or 16 bytes")
    guards = session.guards
    if not guards.is_exempt(session.address) and (
            wait := guards.sealed_from.take(session.network)):
        raise rate_limited("too many sealed messages from this address", wait)
    store = session.store
    if not await store.user_exists(frame.to):
        raise ProtocolError(ErrorCode.NOT_FOUND, "the recipient is not registered here")
    access = await store.sealed_access(frame.to)
    if access is None or not (access.anyone or (
            access.verifier and frame.access and access_ok(frame.access, access.verifier))):
        raise ProtocolError(ErrorCode.ACCESS_DENIED,
                            "the recipient takes sealed messages from its contacts only")
    if wait := guards.sealed_to.take(frame.to):
        raise rate_limited("too many sealed messages to this recipient", wait)
    # Queued under an id bound to (recipient, msg), with no sender: a retry is stored
    # once, and nothing in the row names who sent it.
    return Later(
        store.enqueue(frame.to, SEALED_SENDER, sealed_queue_id(frame.to, frame.msg),
                      frame.body, frame.expires_at),
        lambda stored: Stored(id=frame.id, msg=frame.msg, seq=stored.seq, at=stored.at),
    )
