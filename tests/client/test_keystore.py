"""The keystore seals the identity seed with Argon2id + SecretBox."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from nacl import pwhash

from tenchat.client.keystore import Keystore, NoIdentity, Secrets, WrongPassphrase

FAST = {"opslimit": pwhash.argon2id.OPSLIMIT_MIN, "memlimit": pwhash.argon2id.MEMLIMIT_MIN}


def secrets() -> Secrets:
    return Secrets(identity_seed=os.urandom(32), storage_key=os.urandom(32), handle="alice",
                   relay="ws://127.0.0.1:1")


def test_round_trip_and_file_is_private(tmp_path: Path) -> None:
    ks = Keystore.in_home(tmp_path / "home")
    s = secrets()
    ks.save(s, "pass phrase", **FAST)
    assert ks.load("pass phrase") == s
    mode = stat.S_IMODE(ks.path.stat().st_mode)
    assert mode == 0o600
    raw = ks.path.read_bytes()
    assert s.identity_seed not in raw and s.storage_key not in raw and b"alice" not in raw


def test_wrong_passphrase(tmp_path: Path) -> None:
    ks = Keystore.in_home(tmp_path)
    ks.save(secrets(), "right", **FAST)
    with pytest.raises(WrongPassphrase):
        ks.load("wrong")


def test_missing_identity(tmp_path: Path) -> None:
    with pytest.raises(NoIdentity):
        Keystore.in_home(tmp_path).load("x")


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    ks = Keystore.in_home(tmp_path)
    ks.save(secrets(), "right", **FAST)
    raw = bytearray(ks.path.read_bytes())
    raw[-5] ^= 1
    ks.path.write_bytes(bytes(raw))
    with pytest.raises(WrongPassphrase):
        ks.load("right")
