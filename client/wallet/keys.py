"""Wallet keys: make, import (a private key, or a V3 keystore JSON) and sign with them.
eth-account lives here; callers get addresses, signatures and raw transactions."""

from __future__ import annotations

import json
import re
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

from . import WalletError, restore_recursion_limit

restore_recursion_limit()  # eth-account raised it (see wallet/__init__.py)

__all__ = ["new_key", "key_from_hex", "key_from_keystore", "address_of", "sign_personal"]


def new_key() -> bytes:
    return bytes(Account.create().key)


def key_from_hex(text: str) -> bytes:
    text = text.strip()
    body = text[2:] if text.lower().startswith("0x") else text
    if not re.fullmatch(r"[0-9a-fA-F]{64}", body):
        raise WalletError("a private key is 64 hex digits (optionally after 0x)")
    key = bytes.fromhex(body)
    try:
        Account.from_key(key)
    except (ValueError, TypeError):
        raise WalletError("not a valid secp256k1 private key") from None
    return key


def key_from_keystore(data: str, password: str) -> bytes:
    """Decrypt a V3 keystore (Web3 Secret Storage) JSON."""
    try:
        doc: Any = json.loads(data)
    except json.JSONDecodeError:
        raise WalletError("the keystore file is not JSON") from None
    if not isinstance(doc, dict) or doc.get("version") != 3:
        raise WalletError("not a V3 keystore (version 3 JSON)")
    try:
        return bytes(Account.decrypt(doc, password))
    except ValueError as exc:
        if "MAC" in str(exc):
            raise WalletError("wrong keystore password") from None
        raise WalletError(f"cannot read the keystore: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise WalletError(f"the keystore is missing {exc}") from None


def address_of(key: bytes) -> str:
    return str(Account.from_key(key).address)


def sign_personal(key: bytes, text: str) -> bytes:
    """EIP-191 ``personal_sign`` of ``text``: 65 bytes r ‖ s ‖ v (v = 27 or 28)."""
    return bytes(Account.sign_message(encode_defunct(text=text), key).signature)
