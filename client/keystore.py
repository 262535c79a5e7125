"""The keystore: the identity seed and the local storage key, encrypted at rest.

The file holds Argon2id parameters, a salt and a SecretBox (XSalsa20-Poly1305)
of the secrets. The *storage key* it protects encrypts everything secret in the
local cache (prekey private keys, ratchet sessions), so one passphrase
unlocks one identity and the cache file alone reveals no key.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
from nacl import pwhash, secret, utils
from nacl.exceptions import CryptoError as NaclCryptoError

from ..common.errors import TenchatError

__all__ = ["Keystore", "KeystoreError", "WrongPassphrase", "NoIdentity", "Secrets", "DerivedKey"]

# The key file at rest: libsodium's MODERATE Argon2id (3 passes, 256 MiB; ~0.5 s here),
# the level it recommends for keys stored on disk. Every unlock pays it, a scripted
# `tenchat send` included; TENCHAT_KDF=interactive (2 passes, 64 MiB, ~0.08 s) is the
# explicit opt-out for scripts that need the 0.5 s command budget (docs/crypto.md).
LEVELS = {
    "interactive": (pwhash.argon2id.OPSLIMIT_INTERACTIVE, pwhash.argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": (pwhash.argon2id.OPSLIMIT_MODERATE, pwhash.argon2id.MEMLIMIT_MODERATE),
    "sensitive": (pwhash.argon2id.OPSLIMIT_SENSITIVE, pwhash.argon2id.MEMLIMIT_SENSITIVE),
}
OPSLIMIT, MEMLIMIT = LEVELS["moderate"]
# What a keystore file may ask for: a file is read before any secret is known, so its
# parameters are bounded (a forged file can't make an unlock take hours or all memory).
OPS_BOUNDS = (pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.OPSLIMIT_SENSITIVE)
MEM_BOUNDS = (pwhash.argon2id.MEMLIMIT_MIN, pwhash.argon2id.MEMLIMIT_SENSITIVE)
FILENAME = "keystore.msgpack"
LOCK_FILENAME = "lock"  # the home's lock (client/homelock.py), taken by an upgrade
UPGRADE_LOCK_WAIT = 2.0  # s; a home busy for longer is upgraded at a later unlock


def kdf_level() -> tuple[int, int]:
    """(opslimit, memlimit) for keystores written now: TENCHAT_KDF, else MODERATE."""
    name = os.environ.get("TENCHAT_KDF", "moderate").strip().lower() or "moderate"
    if name not in LEVELS:
        raise KeystoreError(f"TENCHAT_KDF must be one of {', '.join(LEVELS)}, not {name!r}")
    return LEVELS[name]


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


class DerivedKey(msgspec.Struct, array_like=True):
    """A keystore's key and what it was derived from (not the passphrase)."""

    salt: bytes
    opslimit: int
    memlimit: int
    key: bytes


def _argon2id(passphrase: str, sealed: _Sealed) -> bytes:
    return pwhash.argon2id.kdf(secret.SecretBox.KEY_SIZE, passphrase.encode(), sealed.salt,
                               opslimit=sealed.opslimit, memlimit=sealed.memlimit)


class Secrets(msgspec.Struct):
    identity_seed: bytes  # Ed25519 seed of the identity key
    storage_key: bytes  # SecretBox key for secrets in the local cache
    handle: str
    relay: str
    # The device key (docs/crypto.md "Devices"): empty on a home made before devices (and
    # on an account's first device), whose device key is the identity (account) key.
    device_seed: bytes = b""


@dataclass
class Keystore:
    path: Path

    @classmethod
    def in_home(cls, home: Path) -> Keystore:
        return cls(home / FILENAME)

    def exists(self) -> bool:
        return self.path.exists()

    def save(self, secrets: Secrets, passphrase: str, *, opslimit: int | None = None,
             memlimit: int | None = None) -> None:
        level = kdf_level()
        opslimit = level[0] if opslimit is None else opslimit
        memlimit = level[1] if memlimit is None else memlimit
        salt = utils.random(pwhash.argon2id.SALTBYTES)
        key = pwhash.argon2id.kdf(secret.SecretBox.KEY_SIZE, passphrase.encode(), salt,
                                  opslimit=opslimit, memlimit=memlimit)
        box = secret.SecretBox(key).encrypt(msgspec.msgpack.encode(secrets))
        sealed = _Sealed(1, "argon2id", opslimit, memlimit, salt, bytes(box))
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # A temp file of its own (never a fixed name another process could truncate
        # under us), durable before it replaces the keystore, and the rename durable too.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keystore.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(msgspec.msgpack.encode(sealed))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _upgrade(self, raw: bytes, secrets: Secrets, passphrase: str, ops: int,
                 mem: int) -> None:
        """Seal again at (ops, mem), under the home's lock, if the file is still the one
        that was decrypted (another process may have upgraded it, or changed the
        passphrase, meanwhile). Skipped when the lock is busy: tried at the next unlock."""
        lock_fd = os.open(self.path.parent / LOCK_FILENAME,
                          os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + UPGRADE_LOCK_WAIT
            while True:
                try:
                    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        return
                    time.sleep(0.05)
            if self.path.read_bytes() != raw:
                return
            self.save(secrets, passphrase, opslimit=ops, memlimit=mem)
        finally:
            os.close(lock_fd)  # releases the flock

    def _read(self) -> tuple[bytes, _Sealed]:
        """The file's bytes and its checked header (NoIdentity, KeystoreError)."""
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
        if not (OPS_BOUNDS[0] <= sealed.opslimit <= OPS_BOUNDS[1]
                and MEM_BOUNDS[0] <= sealed.memlimit <= MEM_BOUNDS[1]
                and len(sealed.salt) == pwhash.argon2id.SALTBYTES):
            raise KeystoreError(
                f"keystore {self.path} asks for Argon2id parameters out of bounds "
                f"(opslimit {sealed.opslimit}, memlimit {sealed.memlimit}); it is damaged "
                "or not from tenchat")
        return raw, sealed

    def derive(self, passphrase: str) -> DerivedKey:
        """The file's key for ``passphrase`` (Argon2id, the costly half of ``load``), with
        the parameters it was derived for; right or wrong is known only by ``load``."""
        _, sealed = self._read()
        return DerivedKey(sealed.salt, sealed.opslimit, sealed.memlimit,
                          _argon2id(passphrase, sealed))

    def load(self, passphrase: str, *, upgrade: bool = False,
             derived: DerivedKey | None = None) -> Secrets:
        """The secrets; with ``upgrade``, a file sealed more weakly than kdf_level() (an
        older tenchat wrote INTERACTIVE) is sealed again at that level. ``derived``: the
        key ``derive`` gave for this passphrase (client/unlock_ahead.py), taken only if the
        file still has its salt and parameters."""
        raw, sealed = self._read()
        if derived is not None and (derived.salt, derived.opslimit, derived.memlimit) == (
                sealed.salt, sealed.opslimit, sealed.memlimit):
            key = derived.key
        else:
            key = _argon2id(passphrase, sealed)
        try:
            plain = secret.SecretBox(key).decrypt(sealed.box)
        except NaclCryptoError:
            raise WrongPassphrase("wrong passphrase") from None
        secrets = msgspec.msgpack.decode(plain, type=Secrets)
        if upgrade:
            ops, mem = kdf_level()
            if sealed.opslimit < ops or sealed.memlimit < mem:
                # on failure it stays readable as it is; tried again at the next unlock
                with contextlib.suppress(OSError):
                    self._upgrade(raw, secrets, passphrase, ops, mem)
        return secrets
