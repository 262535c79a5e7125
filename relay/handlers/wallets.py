"""Handlers for wallet bindings and Sign-In with Ethereum (common.wallets).

The relay verifies a binding completely (both signatures, one of this relay's
origins, the expiry, the identity it names) before storing it, and only for the
authenticated identity; clients verify it again. A wallet sign-in is the identity-key
challenge answered by a linked wallet instead: the SIWE message must carry the
challenge as nonce and name one of this relay's origins.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tenchat.common import wallets
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import (
    Authed,
    Ok,
    WalletAuth,
    WalletLinkPut,
    WalletLinks,
    WalletsGet,
    WalletUnlink,
)
from tenchat.common.siwe import to_checksum_address

from ..admin import auth_failed, disconnect, role_of
from ..session import Later, Session, acting_account, check_authenticated
from .connect import admit_identity
from .devices import account_handle
from .table import Answer, HandlerTable

__all__ = ["HANDLERS"]

HANDLERS = HandlerTable()


def _now() -> datetime:
    return datetime.now(UTC)


@HANDLERS.on(WalletLinkPut)
async def wallet_link(session: Session, frame: WalletLinkPut) -> Answer:
    user = acting_account(session)
    link = wallets.open_link(frame.record, origins=session.origins, now=_now())
    if link.user != user:
        raise ProtocolError(ErrorCode.FORBIDDEN, "a wallet can only be linked to oneself")
    return Later(session.store.put_wallet_link(link.address, user, link.issued_at,
                                               frame.record),
                 lambda _: Ok(id=frame.id))


@HANDLERS.on(WalletUnlink)
async def wallet_unlink(session: Session, frame: WalletUnlink) -> Answer:
    user = acting_account(session)

    def answer(found: bool) -> Ok:
        if not found:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such wallet is linked to you")
        return Ok(id=frame.id)

    return Later(session.store.wallet_unlink(user, to_checksum_address(frame.address)),
                 answer)


@HANDLERS.on(WalletsGet)
async def wallets_get(session: Session, frame: WalletsGet) -> Answer:
    check_authenticated(session)
    records = await session.store.wallet_links(frame.user)
    return WalletLinks(id=frame.id, user=frame.user, records=records)


@HANDLERS.on(WalletAuth)
async def wallet_auth(session: Session, frame: WalletAuth) -> Answer:
    if session.version is None:
        raise ProtocolError(ErrorCode.PROTOCOL, "send hello before wallet_auth")
    if session.user is not None:
        raise ProtocolError(ErrorCode.PROTOCOL, "this connection is already authenticated")
    try:
        address = wallets.check_auth(frame.message, frame.sig, origins=session.origins,
                                     challenge=session.challenge, now=_now())
    except ProtocolError as exc:
        auth_failed(session, "wallet sign-in", None, f"wallet sign-in: {exc.message[:200]}")
        raise
    user = await session.store.wallet_owner(address)
    if user is None:
        auth_failed(session, "wallet unlinked", None, f"wallet {address} is linked to no one")
        raise ProtocolError(ErrorCode.AUTH_FAILED, "this wallet is linked to no identity here")
    # From here on exactly as `auth` (relay.handlers.connect.auth): bans, presence, role.
    if await session.store.is_banned(user):
        auth_failed(session, "banned", user, "banned", actor=user)
        disconnect(session, "banned")
        raise ProtocolError(ErrorCode.BANNED, "this identity is banned from this relay")
    await admit_identity(session, user)
    session.user = user
    session.hub.join(session)
    if await session.store.hide_presence(user):
        session.hub.set_hidden(user, True)
    # A listed device acts for its account (docs/protocol.md §6E).
    session.account, rec = await account_handle(session.store, user)
    session.handle = rec.handle if rec else None
    session.role = role_of(session.config, user, session.handle)
    count = await session.store.otk_count(user)
    return Authed(id=frame.id, user=user, handle=rec.handle if rec else None, otk_count=count)
