"""One small async handler per request frame, found through a dispatch table.

A handler validates (raising ProtocolError with a wire code), then either
returns its answer, returns a :class:`Later` (writes: the answer is built when
the commit resolves the store's future, while the connection goes on
reading), or returns None when it has answered itself.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from tenchat.common import identity
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import (
    SUPPORTED_VERSIONS,
    Ack,
    Auth,
    Authed,
    Bundle,
    Deliver,
    Fetch,
    FetchBundle,
    HandleInfo,
    Hello,
    Lookup,
    Messages,
    Ok,
    PrekeyStatus,
    PresenceState,
    PublishPrekeys,
    Register,
    Send,
    Stored,
    Subscribe,
    Watch,
    Welcome,
    Whois,
)

from .session import Later, Session, Subscription, check_authenticated
from .store import BundleRecord, HandleRecord

__all__ = ["HANDLERS", "dispatch", "Answer"]

Answer = msgspec.Struct | Later | None
Handler = Callable[[Session, Any], Awaitable[Answer]]

HANDLERS: dict[type[msgspec.Struct], Handler] = {}

F = TypeVar("F", bound=Handler)


def handles(frame_type: type[msgspec.Struct]) -> Callable[[F], F]:
    def register(fn: F) -> F:
        HANDLERS[frame_type] = fn
        return fn

    return register


async def dispatch(session: Session, frame: msgspec.Struct) -> Answer:
    handler = HANDLERS.get(type(frame))
    if handler is None:  # a request type the relay decodes but does not serve (yet)
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unsupported frame {type(frame).__name__}")
    return await handler(session, frame)


def _handle_info(rid: int, rec: HandleRecord) -> HandleInfo:
    return HandleInfo(id=rid, handle=rec.handle, user=rec.user, sig=rec.sig)


# --- connection set-up ---------------------------------------------------------------------


@handles(Hello)
async def hello(session: Session, frame: Hello) -> Answer:
    if session.version is not None:
        raise ProtocolError(ErrorCode.PROTOCOL, "hello was already answered")
    common = set(frame.versions) & set(SUPPORTED_VERSIONS)
    if not common:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"this relay speaks versions {list(SUPPORTED_VERSIONS)}",
        )
    session.version = max(common)
    return Welcome(
        id=frame.id,
        version=session.version,
        relay=session.config.name,
        challenge=session.challenge,
        max_frame=session.config.max_frame,
    )


@handles(Auth)
async def auth(session: Session, frame: Auth) -> Answer:
    if session.version is None:
        raise ProtocolError(ErrorCode.PROTOCOL, "send hello before auth")
    if session.user is not None:
        raise ProtocolError(ErrorCode.PROTOCOL, "this connection is already authenticated")
    message = identity.auth_message(session.config.name, session.challenge)
    if not identity.verify_signature(frame.user, message, frame.sig):
        raise ProtocolError(ErrorCode.AUTH_FAILED, "the signature over the challenge is invalid")
    session.user = frame.user
    session.hub.join(session)
    rec = await session.store.handle_by_user(frame.user)
    count = await session.store.otk_count(frame.user)
    return Authed(
        id=frame.id, user=frame.user, handle=rec.handle if rec else None, otk_count=count
    )


# --- handles -----------------------------------------------------------------------------


@handles(Register)
async def register(session: Session, frame: Register) -> Answer:
    user = check_authenticated(session)
    handle = identity.normalize_handle(frame.handle)
    if not identity.verify_signature(user, identity.handle_message(handle, user), frame.sig):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "sig is not over handle_message(handle, user)")
    return Later(
        session.store.register(user, handle, frame.sig),
        lambda rec: _handle_info(frame.id, rec),
    )


@handles(Lookup)
async def lookup(session: Session, frame: Lookup) -> Answer:
    check_authenticated(session)
    handle = identity.normalize_handle(frame.handle)
    rec = await session.store.handle_by_name(handle)
    if rec is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no identity holds @{handle}")
    return _handle_info(frame.id, rec)


@handles(Whois)
async def whois(session: Session, frame: Whois) -> Answer:
    check_authenticated(session)
    rec = await session.store.handle_by_user(frame.user)
    if rec is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, "this identity holds no handle")
    return _handle_info(frame.id, rec)


# --- prekeys -----------------------------------------------------------------------------


@handles(PublishPrekeys)
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


@handles(FetchBundle)
async def fetch_bundle(session: Session, frame: FetchBundle) -> Answer:
    check_authenticated(session)
    def answer(rec: BundleRecord | None) -> Bundle:
        if rec is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, "this identity has published no prekeys")
        if rec.otk is not None and rec.otk_count < session.config.otk_low:
            session.hub.prekeys_low(frame.user, rec.otk_count)
        return Bundle(id=frame.id, user=frame.user, spk=rec.spk, otk=rec.otk)

    return Later(session.store.take_bundle(frame.user), answer)


# --- messages ----------------------------------------------------------------------------


@handles(Send)
async def send(session: Session, frame: Send) -> Answer:
    sender = check_authenticated(session)
    if not await session.store.user_exists(frame.to):
        raise ProtocolError(ErrorCode.NOT_FOUND, "the recipient is not registered here")
    if frame.eph:
        at = time.time_ns() // 1_000_000
        item = Deliver(seq=0, msg=frame.msg, sender=sender, at=at, body=frame.body)
        session.hub.publish_ephemeral(frame.to, item)
        return Ok(id=frame.id)
    return Later(
        session.store.enqueue(frame.to, sender, frame.msg, frame.body),
        lambda stored: Stored(id=frame.id, msg=frame.msg, seq=stored.seq, at=stored.at),
    )


@handles(Ack)
async def ack(session: Session, frame: Ack) -> Answer:
    user = check_authenticated(session)
    return Later(session.store.ack(user, frame.seqs), lambda _: Ok(id=frame.id))


@handles(Subscribe)
async def subscribe(session: Session, frame: Subscribe) -> Answer:
    check_authenticated(session)
    await session.send(Ok(id=frame.id))
    if session.subscription is None:  # subscribing again changes nothing
        session.subscription = Subscription(session)
        session.subscription.start()
    return None


@handles(Fetch)
async def fetch(session: Session, frame: Fetch) -> Answer:
    user = check_authenticated(session)
    if frame.user != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "only one's own queue can be fetched")
    items = await session.store.pending(user, frame.after, frame.limit + 1)
    return Messages(id=frame.id, items=items[: frame.limit], more=len(items) > frame.limit)


@handles(Watch)
async def watch(session: Session, frame: Watch) -> Answer:
    check_authenticated(session)
    online = session.hub.watch(session, frame.users)
    return PresenceState(id=frame.id, online=online)
