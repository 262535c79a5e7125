"""Wallet bindings: an Ethereum account linked to a tenchat identity, signed by both.

A binding is a SIWE (EIP-4361) message that names the identity (a resource
``urn:tenchat:identity:<hex>``) and the relay (its ``scheme`` and ``domain``: the
URL the linking client dialled, never a name the relay announced), signed by the
wallet (EIP-191), then countersigned by the identity's Ed25519 key over the
message, the wallet's signature and an expiry. Both signatures are needed: the
wallet's proves the account agrees, the identity's that the user claims the
account (else anyone could link their own account to someone else's profile and
catch the gifts meant for them). The expiry (at most :data:`LINK_LIFETIME` ahead)
is renewed by the owner's client with the identity key alone; an unlinked wallet
is no longer renewed, so a relay that keeps showing its old binding can do so for
at most that long. The relay checks a binding before storing it, and every client
checks it again before showing or paying a wallet (the relay is untrusted).

Sign-in with a linked wallet uses a second SIWE form, :func:`auth_siwe`, whose
nonce is the connection's challenge. Pure: clocks and keys are arguments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Final

import msgspec

from . import siwe
from .errors import ErrorCode, ProtocolError
from .identity import verify_signature

__all__ = [
    "LINK_STATEMENT", "LINK_URI", "IDENTITY_RESOURCE", "AUTH_STATEMENT", "AUTH_URI",
    "MAX_LINK_RECORD", "LINK_LIFETIME", "LINK_RENEW_BEFORE", "MAX_SKEW",
    "WalletLink", "VerifiedLink", "link_siwe", "link_message", "siwe_origin",
    "sign_link", "renew_link", "link_expiry", "open_link", "auth_siwe", "check_auth", "is_address",
    "NftGate", "encode_gate", "decode_gate",
]

LINK_STATEMENT: Final = "Link this Ethereum account to the tenchat identity named below."
LINK_URI: Final = "urn:tenchat:wallet-link"
IDENTITY_RESOURCE: Final = "urn:tenchat:identity:"
AUTH_STATEMENT: Final = "Sign in to tenchat with this Ethereum account."
AUTH_URI: Final = "urn:tenchat:auth"
AUTH_LIFETIME: Final = timedelta(minutes=5)
MAX_LINK_RECORD: Final = 4096  # bytes
LINK_LIFETIME: Final = timedelta(days=30)  # the longest a countersignature may be valid
LINK_RENEW_BEFORE: Final = timedelta(days=20)  # renew once less than this is left
MAX_SKEW: Final = timedelta(minutes=2)  # an Issued At further ahead than this is refused

Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Sig64 = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
Sig65 = Annotated[bytes, msgspec.Meta(min_length=65, max_length=65)]


class WalletLink(msgspec.Struct, forbid_unknown_fields=True):
    message: Annotated[str, msgspec.Meta(max_length=2048)]  # SIWE text, exactly as signed
    wallet_sig: Sig65  # EIP-191 signature of ``message`` by its address
    user: Key32  # the identity; must match the message's identity resource
    sig: Sig64  # the identity's signature over link_message(message, wallet_sig, expires)
    expires: Annotated[int, msgspec.Meta(ge=0, le=2**53)] = 0  # ms since the epoch


@dataclass(frozen=True, slots=True)
class VerifiedLink:
    address: str  # EIP-55
    user: bytes
    issued_at: int  # ms since the epoch, from the SIWE message
    record: bytes
    expires: int = 0  # ms since the epoch, from the identity's countersignature


def is_address(text: str) -> bool:
    return bool(re.fullmatch(r"0x[0-9a-fA-F]{40}", text))


def _split_origin(origin: str) -> tuple[str, str]:
    scheme, sep, authority = origin.partition("://")
    if not sep or not authority:
        raise siwe.MalformedMessage(f"not a relay origin: {origin[:80]!r}")
    return scheme, authority


def siwe_origin(msg: siwe.SiweMessage) -> str:
    """``scheme://domain`` of a SIWE message ('' without a scheme), to compare with a
    relay origin (common.identity.relay_origin)."""
    return f"{msg.scheme}://{msg.domain}" if msg.scheme else ""


def _not_future(msg: siwe.SiweMessage, now: datetime) -> datetime:
    issued = siwe.parse_datetime(msg.issued_at)
    if issued > now + MAX_SKEW:
        raise siwe.NotYetValid(f"Issued At {msg.issued_at} is in the future")
    return issued


def link_siwe(origin: str, address: str, user: bytes, nonce: str,
              now: datetime) -> siwe.SiweMessage:
    """The SIWE message a wallet signs to link itself to ``user`` on the relay at
    ``origin`` (the canonical origin of the URL dialled: scheme and domain)."""
    scheme, domain = _split_origin(origin)
    return siwe.SiweMessage(
        domain=domain, scheme=scheme, address=siwe.to_checksum_address(address), uri=LINK_URI,
        chain_id=1,
        nonce=nonce, issued_at=siwe.format_datetime(now), statement=LINK_STATEMENT,
        resources=[IDENTITY_RESOURCE + user.hex()],
    )


def link_message(message: str, wallet_sig: bytes, expires: int) -> bytes:
    """What the identity signs: the SIWE text, the wallet's signature over it and the
    expiry (ms since the epoch, 8 bytes big-endian)."""
    return (b"tenchat/wallet-link/v2\x00" + message.encode() + b"\x00" + wallet_sig
            + b"\x00" + expires.to_bytes(8, "big"))


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(WalletLink)


def sign_link(message: str, wallet_sig: bytes, user: bytes,
              sign: Callable[[bytes], bytes], *, expires: int) -> bytes:
    """The record bytes: ``sign`` is the identity's Ed25519 signer, ``expires`` in ms."""
    return _enc.encode(WalletLink(message=message, wallet_sig=wallet_sig, user=user,
                                  sig=sign(link_message(message, wallet_sig, expires)),
                                  expires=expires))


def renew_link(record: bytes, sign: Callable[[bytes], bytes], *, expires: int) -> bytes:
    """The same binding countersigned again with a later expiry (no wallet needed)."""
    link = _dec.decode(record)
    return sign_link(link.message, link.wallet_sig, link.user, sign, expires=expires)


def link_expiry(now: datetime) -> int:
    """The expiry a fresh or renewed countersignature gets at ``now``."""
    return int((now + LINK_LIFETIME).timestamp() * 1000)


def open_link(record: bytes, *, origins: Collection[str], now: datetime) -> VerifiedLink:
    """Verify a binding record completely at ``now``, for a relay reached at one of
    ``origins``; ProtocolError(malformed | bad_signature | forbidden) names what failed."""
    if len(record) > MAX_LINK_RECORD:
        raise ProtocolError(ErrorCode.MALFORMED, "the wallet link record is too large")
    try:
        link = _dec.decode(record)
    except msgspec.MsgspecError as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"not a wallet link record: {exc}") from None
    try:
        msg = siwe.parse(link.message)
    except siwe.SiweError as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"bad SIWE message: {exc}") from None
    if msg.statement != LINK_STATEMENT or msg.uri != LINK_URI:
        raise ProtocolError(ErrorCode.MALFORMED, "not a tenchat wallet link message")
    if msg.resources != [IDENTITY_RESOURCE + link.user.hex()]:
        raise ProtocolError(ErrorCode.FORBIDDEN, "the message links the wallet to another identity")
    if siwe_origin(msg) not in origins:
        raise ProtocolError(ErrorCode.FORBIDDEN,
                            f"the link is for relay {siwe_origin(msg) or msg.domain!r}")
    try:
        issued_dt = _not_future(msg, now)
    except siwe.SiweError as exc:
        raise ProtocolError(ErrorCode.FORBIDDEN, str(exc)) from None
    try:
        siwe.verify(msg, link.wallet_sig, now=now)
    except siwe.SiweError as exc:
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, f"wallet signature: {exc}") from None
    if not verify_signature(link.user, link_message(link.message, link.wallet_sig,
                                                    link.expires), link.sig):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "the identity's signature is invalid")
    now_ms = int(now.timestamp() * 1000)
    if link.expires <= now_ms:
        raise ProtocolError(ErrorCode.FORBIDDEN, "the binding has expired (its owner's client "
                            "renews it while the wallet stays linked)")
    if link.expires > now_ms + (LINK_LIFETIME + MAX_SKEW) // timedelta(milliseconds=1):
        raise ProtocolError(ErrorCode.FORBIDDEN,
                            f"the binding claims validity beyond {LINK_LIFETIME.days} days")
    issued = int(issued_dt.timestamp() * 1000)
    return VerifiedLink(address=msg.address, user=link.user, issued_at=issued, record=record,
                        expires=link.expires)


def auth_siwe(origin: str, address: str, challenge: bytes, now: datetime) -> siwe.SiweMessage:
    """The SIWE message a linked wallet signs to sign in (nonce: the challenge) to the relay
    at ``origin`` (the canonical origin of the URL dialled: scheme and domain)."""
    scheme, domain = _split_origin(origin)
    return siwe.SiweMessage(
        domain=domain, scheme=scheme, address=siwe.to_checksum_address(address), uri=AUTH_URI,
        chain_id=1,
        nonce=challenge.hex(), issued_at=siwe.format_datetime(now), statement=AUTH_STATEMENT,
        expiration_time=siwe.format_datetime(now + AUTH_LIFETIME),
    )


def check_auth(message: str, sig: bytes, *, origins: Collection[str], challenge: bytes,
               now: datetime) -> str:
    """The address that signed a valid sign-in message for one of ``origins`` (this
    relay's); ProtocolError(auth_failed)."""
    try:
        msg = siwe.parse(message)
        if msg.statement != AUTH_STATEMENT or msg.uri != AUTH_URI:
            raise siwe.MalformedMessage("not a tenchat sign-in message")
        if siwe_origin(msg) not in origins:
            raise siwe.DomainMismatch(
                f"the message is for {siwe_origin(msg) or msg.domain!r}, not this relay")
        _not_future(msg, now)
        siwe.verify(msg, sig, now=now, nonce=challenge.hex())
    except siwe.SiweError as exc:
        raise ProtocolError(ErrorCode.AUTH_FAILED, f"SIWE sign-in: {exc}") from None
    return msg.address


class NftGate(msgspec.Struct, forbid_unknown_fields=True):
    """A group's NFT gate: members must hold a token of ``contract`` on ``chain_id``."""

    chain_id: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    contract: Annotated[str, msgspec.Meta(pattern="^0x[0-9a-fA-F]{40}$")]


_gate_dec = msgspec.msgpack.Decoder(NftGate)


def encode_gate(gate: NftGate) -> bytes:
    return _enc.encode(gate)


def decode_gate(data: bytes) -> NftGate:
    try:
        return _gate_dec.decode(data)
    except msgspec.MsgspecError as exc:
        raise ProtocolError(ErrorCode.MALFORMED, f"bad NFT gate: {exc}") from None
