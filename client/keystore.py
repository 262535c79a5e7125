"""The keystore: the identity seed and the local storage key, encrypted at rest.

The file holds Argon2id parameters, a salt and a SecretBox (XSalsa20-Poly1305)
of the secrets. The *storage key* it protects encrypts everything secret in the
local cache (prekey private keys, ratchet sessions), so one passphrase
unlocks one identity and the cache file alone reveals no key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import msgspec
from nacl import pwhash, secret, utils
from nacl.exceptions import CryptoError as NaclCryptoError

from ..common.errors import TenchatError

__all__ = ["Keystore", "KeystoreError", "WrongPassphrase", "NoIdentity", "Secrets"]

# Interactive Argon2id: ~0.1 s and 64 MiB here; a scripted `tenchat send` pays it on
# every call, so MODERATE (0.65 s) would break the 0.5 s CLI target on its own.
OPSLIMIT = pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = pwhash.argon2id.MEMLIMIT_INTERACTIVE
FILENAME = "keystore.msgpack"


class KeystoreError(TenchatError):
    pass


class WrongPassphrase(KeystoreError):
    pass


class NoIdentity(KeystoreError):
    pass


class _Sealed(msgspec.Struct):
    version: int
    kdf: str
    opslimit: int
    memlimit: int
    salt: bytes
    box: bytes  # SecretBox(nonce || ciphertext) of a msgpack-encoded Secrets


class Secrets(msgspec.Struct):
    identity_seed: bytes  # Ed25519 seed of the identity key
    storage_key: bytes  # SecretBox key for secrets in the local cache
    handle: str
    relay: str


@dataclass
class Keystore:
    path: Path

    @classmethod
    def in_home(cls, home: Path) -> Keystore:
        return cls(home / FILENAME)

    def exists(self) -> bool:
        return self.path.exists()

    def save(self, secrets: Secrets, passphrase: str, *, opslimit: int = OPSLIMIT,
             memlimit: int = MEMLIMIT) -> None:
        salt = utils.random(pwhash.argon2id.SALTBYTES)
        key = pwhash.argon2id.kdf(secret.SecretBox.KEY_SIZE, passphrase.encode(), salt,
                                  opslimit=opslimit, memlimit=memlimit)
        box = secret.SecretBox(key).encrypt(msgspec.msgpack.encode(secrets))
        sealed = _Sealed(1, "argon2id", opslimit, memlimit, salt, bytes(box))
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(msgspec.msgpack.encode(sealed))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def load(self, passphrase: str) -> Secrets:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raise NoIdentity(
                "no identity yet; create one with `tenchat init --handle NAME`"
            ) from None
        try:
            sealed = msgspec.msgpack.decode(raw, type=_Sealed)
        except msgspec.MsgspecError:
            raise KeystoreError(f"keystore {self.path} is damaged") from None
        if sealed.version != 1 or sealed.kdf != "argon2id":
            raise KeystoreError(f"keystore {self.path} has an unknown format")
        key = pwhash.argon2id.kdf(secret.SecretBox.KEY_SIZE, passphrase.encode(), sealed.salt,
                                  opslimit=sealed.opslimit, memlimit=sealed.memlimit)
        try:
            plain = secret.SecretBox(key).decrypt(sealed.box)
        except NaclCryptoError:
            raise WrongPassphrase("wrong passphrase") from None
        return msgspec.msgpack.decode(plain, type=Secrets)
