"""Handlers of connection set-up: hello, and signing in with the identity key."""

from __future__ import annotations

from tenchat.common import identity
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import (
    SUPPORTED_VERSIONS,
    Auth,
    Authed,
    Hello,
    Welcome,
)

from ..admin import auth_failed, disconnect, role_of
from ..session import Session
from .devices import account_handle
from .table import Answer, HandlerTable, rate_limited

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()


@HANDLERS.on(Hello)
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
    if not session.guards.is_exempt(session.address):
        session.register_pow = session.config.register_pow
    return Welcome(
        id=frame.id,
        version=session.version,
        relay=session.config.name,
        challenge=session.challenge,
        max_frame=session.config.max_frame,
        max_blob=session.config.max_blob if session.blobs is not None else 0,
        pow=session.register_pow,
    )


async def admit_identity(session: Session, user: bytes) -> None:
    """Before an identity signs in: one new to this relay (no handle, no prekeys, not seen
    since the relay started) takes a token of its address's ident_rate (issue 12: free
    throwaway identities got around the blob quota). rate_limited past it."""
    guards = session.guards
    if (not session.config.ident_rate or guards.is_exempt(session.address)
            or user in guards.admitted or await session.store.user_exists(user)):
        return
    if wait := guards.new_identities.take(session.network):
        raise rate_limited("too many new identities from this address", wait)
    if len(guards.admitted) >= 100_000:
        guards.admitted.clear()
    guards.admitted.add(user)


@HANDLERS.on(Auth)
async def auth(session: Session, frame: Auth) -> Answer:
    if session.version is None:
        raise ProtocolError(ErrorCode.PROTOCOL, "send hello before auth")
    if session.user is not None:
        raise ProtocolError(ErrorCode.PROTOCOL, "this connection is already authenticated")

    if frame.origin not in session.origins:
        # Signed for another relay URL (or by an old client): a relay in the middle may be
        # forwarding someone's sign-in here.
        auth_failed(session, "foreign origin", frame.user, "foreign origin", actor=frame.user)
        raise ProtocolError(
            ErrorCode.AUTH_FAILED,
            f"auth names origin {frame.origin[:80]!r}, which is not this relay's",
        )
    message = identity.auth_message(frame.origin, session.challenge)
    if not identity.verify_signature(frame.user, message, frame.sig):
        auth_failed(session, "bad signature", frame.user, "bad signature", actor=frame.user)
        raise ProtocolError(ErrorCode.AUTH_FAILED, "the signature over the challenge is invalid")
    if await session.store.is_banned(frame.user):
        auth_failed(session, "banned", frame.user, "banned", actor=frame.user)
        disconnect(session, "banned")
        raise ProtocolError(ErrorCode.BANNED, "this identity is banned from this relay")
    await admit_identity(session, frame.user)
    session.user = frame.user
    session.hub.join(session)
    if await session.store.hide_presence(frame.user):
        session.hub.set_hidden(frame.user, True)
    # A listed device acts for its account (docs/protocol.md §6E).
    session.account, rec = await account_handle(session.store, frame.user)
    session.handle = rec.handle if rec else None
    session.role = role_of(session.config, frame.user, session.handle)
    count = await session.store.otk_count(frame.user)
    return Authed(
        id=frame.id, user=frame.user, handle=rec.handle if rec else None, otk_count=count
    )
