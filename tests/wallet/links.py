"""Helpers: wallet binding records, genuine and forged, for the link tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
from eth_account import Account
from eth_account.messages import encode_defunct

from tenchat.common import wallets as w

Sign = Callable[[bytes], bytes]


def personal(key: bytes, text: str) -> bytes:
    return bytes(Account.sign_message(encode_defunct(text=text), key).signature)


def _origin(relay: str) -> str:
    return relay if "://" in relay else f"ws://{relay}"


def link_record(user: bytes, sign: Sign, wallet_key: bytes, relay: str, *,
                named_user: bytes | None = None, wallet_signer: bytes | None = None,
                when: datetime | None = None, expires: int | None = None) -> bytes:
    """A binding of the wallet of ``wallet_key`` to ``user`` (signed by ``sign``) on the
    relay at origin ``relay`` (a bare name stands for ws://name); the keyword arguments
    forge one part: the identity the message names, the key that signs the SIWE text,
    the expiry (default: LINK_LIFETIME after ``when``)."""
    address = Account.from_key(wallet_key).address
    when = when or datetime.now(UTC)
    msg = w.link_siwe(_origin(relay), address, named_user or user, "abcdef0123456789",
                      when).text()
    wsig = personal(wallet_signer or wallet_key, msg)
    return w.sign_link(msg, wsig, user, sign,
                       expires=w.link_expiry(when) if expires is None else expires)


def retitled(record: bytes, relay: str) -> bytes:
    """The same signatures over a message edited to name another relay (tampered)."""
    link = msgspec.msgpack.decode(record, type=w.WalletLink)
    text = link.message.split(" wants", 1)
    edited = _origin(relay) + " wants" + text[1]
    return msgspec.msgpack.encode(w.WalletLink(message=edited, wallet_sig=link.wallet_sig,
                                               user=link.user, sig=link.sig,
                                               expires=link.expires))
