"""Accounts and devices (issue 16): the signed device list and the linking hand-over.

An **account** is the identity a contact knows: its Ed25519 key (the key the handle is
bound to, the safety number is made of). Each **device** has an Ed25519 key of its own,
with its own relay queue, prekeys and pairwise sessions. The account key signs the list
of its devices (:class:`DeviceList`), versioned by a counter that only goes up; each entry
carries the device's own signature naming the account (:func:`binding_message`), so no
account can claim another's device. A home made before devices existed is an account
whose single device key *is* the account key (:func:`implicit_list`).

Linking a new device hands the account secrets over through the relay without the relay
reading them: the code the new device shows carries a one-time secret and an ephemeral
X25519 key (:class:`LinkCode`); the rendezvous slots are derived from the secret.
Byte layouts: docs/crypto.md "Devices". Pure: keys and times are arguments.
"""

from __future__ import annotations

import base64
import os
import struct
from typing import Annotated, Final

import msgspec
from nacl import bindings

from .crypto.keys import IdentityKey
from .crypto.media import MediaRef
from .crypto.primitives import hkdf_sha256, x25519, x25519_public
from .errors import ErrorCode, ProtocolError
from .identity import verify_signature

__all__ = [
    "MAX_DEVICES", "MAX_DEVICE_NAME", "MAX_LIST_BYTES", "DeviceEntry", "DeviceList",
    "binding_message", "list_message", "sign_binding", "make_list", "open_list",
    "implicit_list", "StaleList", "check_successor", "LinkCode", "LinkRequest", "LinkGrant",
    "link_slots", "seal_request", "open_request", "seal_grant", "open_grant",
    "request_message", "CODE_PREFIX", "History", "HistoryItem", "HISTORY_DEFAULT",
]

HISTORY_DEFAULT: Final = 1000  # messages per conversation a new device is given

MAX_DEVICES: Final = 16
MAX_DEVICE_NAME: Final = 64  # UTF-8 bytes
MAX_LIST_BYTES: Final = 8192
BINDING_DOMAIN: Final = b"tenchat/device/v1"
LIST_DOMAIN: Final = b"tenchat/devices/v1"
REQUEST_DOMAIN: Final = b"tenchat/link-request/v1"
CODE_PREFIX: Final = "tcl1-"

Key32 = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Sig64 = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_DEVICE_NAME)]
U64 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class DeviceEntry(msgspec.Struct, forbid_unknown_fields=True):
    key: Key32  # the device's Ed25519 key: its relay identity and X3DH identity key
    name: Name
    added: U64  # ms since the epoch, the adding device's clock (shown, never trusted)
    sig: Sig64  # by ``key`` over binding_message(account, key)


class DeviceList(msgspec.Struct, forbid_unknown_fields=True):
    v: int
    account: Key32
    version: U64  # strictly greater than every earlier list of this account
    devices: list[DeviceEntry]
    sig: Sig64  # by ``account`` over list_message(...)

    def device_keys(self) -> list[bytes]:
        return [d.key for d in self.devices]

    def entry(self, key: bytes) -> DeviceEntry | None:
        return next((d for d in self.devices if d.key == key), None)

    def named(self, name: str) -> DeviceEntry | None:
        return next((d for d in self.devices if d.name == name), None)


def binding_message(account: bytes, device: bytes) -> bytes:
    """What a device signs to belong to ``account``."""
    return BINDING_DOMAIN + b"\x00" + account + device


def list_message(account: bytes, version: int, devices: list[DeviceEntry]) -> bytes:
    """What the account key signs: every field of every entry, in order."""
    parts = [LIST_DOMAIN, b"\x00", account, struct.pack(">Q", version),
             struct.pack(">B", len(devices))]
    for d in devices:
        name = d.name.encode()
        parts += [d.key, struct.pack(">B", len(name)), name, struct.pack(">Q", d.added), d.sig]
    return b"".join(parts)


def sign_binding(device: IdentityKey, account: bytes) -> bytes:
    return device.sign(binding_message(account, device.public))


def make_list(account: IdentityKey, version: int, devices: list[DeviceEntry]) -> bytes:
    """The signed, encoded list (checked by open_list before it is returned)."""
    dl = DeviceList(v=1, account=account.public, version=version, devices=devices,
                    sig=account.sign(list_message(account.public, version, devices)))
    raw = msgspec.msgpack.encode(dl)
    open_list(raw, account=account.public)
    return raw


def _bad(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_SIGNATURE, message)


def open_list(raw: bytes, *, account: bytes | None = None) -> DeviceList:
    """Decode and check a device list: the account's signature, every device's binding,
    1 to MAX_DEVICES devices with distinct keys and names. ``account``: the account it
    must belong to. ProtocolError (``malformed`` / ``bad_signature``) otherwise."""
    if len(raw) > MAX_LIST_BYTES:
        raise ProtocolError(ErrorCode.MALFORMED, "device list too large")
    try:
        dl = msgspec.msgpack.decode(raw, type=DeviceList)
    except msgspec.MsgspecError:
        raise ProtocolError(ErrorCode.MALFORMED, "not a device list") from None
    if dl.v != 1 or not 1 <= len(dl.devices) <= MAX_DEVICES:
        raise ProtocolError(ErrorCode.MALFORMED, "a device list has version 1, 1 to 16 devices")
    if len({d.key for d in dl.devices}) != len(dl.devices) or len(
            {d.name for d in dl.devices}) != len(dl.devices):
        raise ProtocolError(ErrorCode.MALFORMED, "device keys and names must be distinct")
    if any(len(d.name.encode()) > MAX_DEVICE_NAME for d in dl.devices):
        raise ProtocolError(ErrorCode.MALFORMED, "device name too long")
    if account is not None and dl.account != account:
        raise _bad("the device list is another account's")
    if not verify_signature(dl.account, list_message(dl.account, dl.version, dl.devices),
                            dl.sig):
        raise _bad("the device list is not signed by its account key")
    for d in dl.devices:
        if not verify_signature(d.key, binding_message(dl.account, d.key), d.sig):
            raise _bad("a device in the list did not sign its place in this account")
    return dl


def implicit_list(account: bytes) -> list[bytes]:
    """The devices of an account that never published a list: its own key (a home made
    before devices existed, or one never linked)."""
    return [account]


class StaleList(ProtocolError):
    """A list older than (or as old as, but different from) the one already held."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.FORBIDDEN, message)


def check_successor(held: DeviceList | None, new: DeviceList) -> bool:
    """May ``new`` replace ``held``? True if it changes something, False if it is the
    same list; StaleList if it is another account's, older, or a different list under
    the same version (a relay replaying or forging)."""
    if held is None:
        return True
    if new.account != held.account:
        raise StaleList("the device list is another account's")
    if new.version < held.version:
        raise StaleList(f"device list version {new.version} is older than the one held "
                        f"({held.version})")
    if new.version == held.version:
        if new.sig != held.sig:
            raise StaleList("two different device lists carry the same version")
        return False
    return True


# --- linking -------------------------------------------------------------------------


class LinkCode(msgspec.Struct, frozen=True):
    """What the new device shows: a one-time secret and its ephemeral X25519 key."""

    secret: bytes  # 16 bytes
    ephemeral: bytes  # X25519 public, 32 bytes

    def encode(self) -> str:
        raw = self.secret + self.ephemeral
        return CODE_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> LinkCode:
        text = text.strip()
        if not text.startswith(CODE_PREFIX):
            raise ProtocolError(ErrorCode.MALFORMED, "not a tenchat link code")
        body = text[len(CODE_PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            raise ProtocolError(ErrorCode.MALFORMED, "not a tenchat link code") from None
        if len(raw) != 48:
            raise ProtocolError(ErrorCode.MALFORMED, "not a tenchat link code")
        return cls(secret=raw[:16], ephemeral=raw[16:])

    @classmethod
    def make(cls) -> tuple[LinkCode, bytes]:
        """A fresh code and the ephemeral private key the new device keeps."""
        private = os.urandom(32)
        return cls(secret=os.urandom(16), ephemeral=x25519_public(private)), private


class LinkRequest(msgspec.Struct, forbid_unknown_fields=True):
    device: Key32  # the new device's key
    name: Name
    sig: Sig64  # by ``device`` over request_message(code.ephemeral)


class LinkGrant(msgspec.Struct):
    """The account secrets the approving device hands over (unknown keys ignored)."""

    account_seed: Key32
    handle: str
    devices: bytes  # the account's current signed device list (may be the implicit one: b"")
    contacts: list[tuple[bytes, str | None, bool]] = []  # (account, handle, verified)
    history: MediaRef | None = None  # a sealed blob: History, the latest messages
    # The account's profile key (sealed sender, one per account) and its generation.
    profile_key: bytes = b""
    profile_generation: int = 0
    access: list[tuple[bytes, bytes]] = []  # (contact, their access key) held


class HistoryItem(msgspec.Struct, array_like=True):
    """One message of the history a new device is given (docs/crypto.md "Devices")."""

    id: bytes
    conv: bytes  # a user id, or a group id
    outgoing: bool
    text: str
    sent_at: int
    received_at: int
    status: int  # as in the client's cache: 0 pending … 3 read
    sender: bytes | None = None  # a group message's author
    reply_to: bytes | None = None
    expires_at: int = 0


class History(msgspec.Struct):
    v: int
    items: list[HistoryItem]


def request_message(ephemeral: bytes) -> bytes:
    return REQUEST_DOMAIN + b"\x00" + ephemeral


def link_slots(secret: bytes) -> tuple[bytes, bytes]:
    """The rendezvous slots (request, grant): 32 bytes each, derived from the secret."""
    zeros = bytes(32)
    return (hkdf_sha256(secret, salt=zeros, info=b"tenchat/link/slot/request/v1", length=32),
            hkdf_sha256(secret, salt=zeros, info=b"tenchat/link/slot/grant/v1", length=32))


def _seal(key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    nonce = os.urandom(24)
    return nonce + bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce,
                                                                        key)


def _open(key: bytes, blob: bytes, ad: bytes) -> bytes:
    try:
        return bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(blob[24:], ad, blob[:24],
                                                                   key)
    except Exception:  # nacl's CryptoError, or a blob too short
        raise ProtocolError(ErrorCode.BAD_SIGNATURE, "the link blob does not open") from None


def seal_request(code: LinkCode, device: IdentityKey, name: str) -> bytes:
    key = hkdf_sha256(code.secret, salt=bytes(32), info=b"tenchat/link/request/v1", length=32)
    req = LinkRequest(device=device.public, name=name,
                      sig=device.sign(request_message(code.ephemeral)))
    return _seal(key, msgspec.msgpack.encode(req), link_slots(code.secret)[0])


def open_request(code: LinkCode, blob: bytes) -> LinkRequest:
    key = hkdf_sha256(code.secret, salt=bytes(32), info=b"tenchat/link/request/v1", length=32)
    try:
        req = msgspec.msgpack.decode(_open(key, blob, link_slots(code.secret)[0]),
                                     type=LinkRequest)
    except msgspec.MsgspecError:
        raise ProtocolError(ErrorCode.MALFORMED, "not a link request") from None
    if not verify_signature(req.device, request_message(code.ephemeral), req.sig):
        raise _bad("the link request is not signed by its device")
    return req


def _grant_key(secret: bytes, shared: bytes) -> bytes:
    return hkdf_sha256(shared, salt=secret.ljust(32, b"\x00"), info=b"tenchat/link/grant/v1",
                       length=32)


def seal_grant(code: LinkCode, grant: LinkGrant) -> bytes:
    """``A_pub (32) || nonce (24) || ciphertext``: only the holder of the code's
    ephemeral private key (and the secret) opens it."""
    private = os.urandom(32)
    public = x25519_public(private)
    key = _grant_key(code.secret, x25519(private, code.ephemeral))
    return public + _seal(key, msgspec.msgpack.encode(grant), link_slots(code.secret)[1] + public)


def open_grant(code: LinkCode, private: bytes, blob: bytes) -> LinkGrant:
    if len(blob) < 32 + 24 + 16:
        raise ProtocolError(ErrorCode.MALFORMED, "not a link grant")
    public = blob[:32]
    key = _grant_key(code.secret, x25519(private, public))
    try:
        return msgspec.msgpack.decode(_open(key, blob[32:], link_slots(code.secret)[1] + public),
                                      type=LinkGrant)
    except msgspec.MsgspecError:
        raise ProtocolError(ErrorCode.MALFORMED, "not a link grant") from None
