"""Wallet bindings: an Ethereum account linked to a tenchat identity, signed by both.

A binding is a SIWE (EIP-4361) message that names the identity (a resource
``urn:tenchat:identity:<hex>``) and the relay (its ``domain``), signed by the
wallet (EIP-191), then countersigned by the identity's Ed25519 key over the
message and the wallet's signature. Both signatures are needed: the wallet's
proves the account agrees, the identity's that the user claims the account (else
anyone could link their own account to someone else's profile and catch the
gifts meant for them). The relay checks a binding before storing it, and every
client checks it again before showing or paying a wallet (the relay is untrusted).

Sign-in with a linked wallet uses a second SIWE form, :func:`auth_siwe`, whose
nonce is the connection's challenge. Pure: clocks and keys are arguments.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Final

import msgspec

from . import siwe
from .errors import ErrorCode, ProtocolError
from .identity import verify_signature

__all__ = [
    "LINK_STATEMENT", "LINK_URI", "IDENTITY_RESOURCE", "AUTH_STATEMENT", "AUTH_URI",
    "MAX_LINK_RECORD", "WalletLink", "VerifiedLink", "link_siwe", "link_message",
    "sign_link", "open_link", "auth_siwe", "check_auth", "is_address",
    "NftGate", "encode_gate", "decode_gate",
]

LINK_STATEMENT: Final = "Link this Ethereum account to the tenchat identity named below."
LINK_URI: Final = "urn:tenchat:wallet-link"
IDENTITY_RESOURCE: Final = "urn:tenchat:identity:"
AUTH_STATEMENT: Final = "Sign in to tenchat with this Ethereum account."
AUTH_URI: Final = "urn:tenchat:auth"
AUTH_LIFETIME: Final = timedelta(minutes=5)
MAX_LINK_RECORD: Final = 4096  # bytes

Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Sig64 = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
Sig65 = Annotated[bytes, msgspec.Meta(min_length=65, max_length=65)]


class WalletLink(msgspec.Struct, forbid_unknown_fields=True):
    message: Annotated[str, msgspec.Meta(max_length=2048)]  # SIWE text, exactly as signed
    wallet_sig: Sig65  # EIP-191 signature of ``message`` by its address
    user: Key32  # the identity; must match the message's identity resource
    sig: Sig64  # the identity's Ed25519 signature over link_message(message, wallet_sig)


@dataclass(frozen=True, slots=True)
class VerifiedLink:
    address: str  # EIP-55
    user: bytes
    issued_at: int  # ms since the epoch, from the SIWE message
    record: bytes


def is_address(text: str) -> bool:
    return bool(re.fullmatch(r"0x[0-9a-fA-F]{40}", text))


def link_siwe(relay: str, address: str, user: bytes, nonce: str, now: datetime) -> siwe.SiweMessage:
    """The SIWE message a wallet signs to link itself to ``user`` on ``relay``."""
    return siwe.SiweMessage(
        domain=relay, address=siwe.to_checksum_address(address), uri=LINK_URI, chain_id=1,
        nonce=nonce, issued_at=siwe.format_datetime(now), statement=LINK_STATEMENT,
        resources=[IDENTITY_RESOURCE + user.hex()],
    )


def link_message(message: str, wallet_sig: bytes) -> bytes:
    """What the identity signs: the SIWE text and the wallet's signature over it."""
    return b"tenchat/wallet-link/v1\x00" + message.encode() + b"\x00" + wallet_sig


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(WalletLink)


def sign_link(message: str, wallet_sig: bytes, user: bytes,
              sign: Callable[[bytes], bytes]) -> bytes:
    """The record bytes: ``sign`` is the identity's Ed25519 signer."""
    return _enc.encode(WalletLink(message=message, wallet_sig=wallet_sig, user=user,
                                  sig=sign(link_message(message, wallet_sig))))


def open_link(record: bytes, *, relay: str, now: datetime) -> VerifiedLink:
    """Verify a binding record completely; ProtocolError(malformed | bad_signature |
    forbidden) names what failed."""
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
    if msg.domain != relay:
        raise ProtocolError(ErrorCode.FORBIDDEN, f"the link is for relay {msg.domain!r}")
    try:
        siwe.verify(msg, link.wallet_sig, now=now)
    except siwe.SiweError as exc:
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, f"wallet signature: {exc}") from None
    if not verify_signature(link.user, link_message(link.message, link.wallet_sig), link.sig):
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "the identity's signature is invalid")
    issued = int(siwe.parse_datetime(msg.issued_at).timestamp() * 1000)
    return VerifiedLink(address=msg.address, user=link.user, issued_at=issued, record=record)


def auth_siwe(relay: str, address: str, challenge: bytes, now: datetime) -> siwe.SiweMessage:
    """The SIWE message a linked wallet signs to sign in (nonce: the challenge)."""
    return siwe.SiweMessage(
        domain=relay, address=siwe.to_checksum_address(address), uri=AUTH_URI, chain_id=1,
        nonce=challenge.hex(), issued_at=siwe.format_datetime(now), statement=AUTH_STATEMENT,
        expiration_time=siwe.format_datetime(now + AUTH_LIFETIME),
    )


def check_auth(message: str, sig: bytes, *, relay: str, challenge: bytes,
               now: datetime) -> str:
    """The address that signed a valid sign-in message; ProtocolError(auth_failed)."""
    try:
        msg = siwe.parse(message)
        if msg.statement != AUTH_STATEMENT or msg.uri != AUTH_URI:
            raise siwe.MalformedMessage("not a tenchat sign-in message")
        siwe.verify(msg, sig, now=now, domain=relay, nonce=challenge.hex())
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
