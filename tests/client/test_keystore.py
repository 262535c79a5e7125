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


# --- Argon2id level at rest and bounds on what a file may ask for (issue 21, item 5) ------


def test_new_keystores_are_sealed_at_moderate(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import msgspec

    monkeypatch.delenv("TENCHAT_KDF", raising=False)
    ks = Keystore.in_home(tmp_path)
    ks.save(secrets(), "pass")
    sealed = msgspec.msgpack.decode(ks.path.read_bytes())
    assert (sealed["opslimit"], sealed["memlimit"]) == (pwhash.argon2id.OPSLIMIT_MODERATE,
                                      pwhash.argon2id.MEMLIMIT_MODERATE)


def test_an_old_interactive_keystore_stays_readable_and_is_upgraded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import msgspec

    monkeypatch.delenv("TENCHAT_KDF", raising=False)
    ks = Keystore.in_home(tmp_path)
    s = secrets()
    ks.save(s, "pass", opslimit=pwhash.argon2id.OPSLIMIT_INTERACTIVE,
            memlimit=pwhash.argon2id.MEMLIMIT_INTERACTIVE)  # as tenchat 0.1 wrote it
    assert ks.load("pass") == s  # plain load changes nothing
    assert msgspec.msgpack.decode(ks.path.read_bytes())["opslimit"] == \
        pwhash.argon2id.OPSLIMIT_INTERACTIVE
    assert ks.load("pass", upgrade=True) == s  # an unlock seals it again at MODERATE
    sealed = msgspec.msgpack.decode(ks.path.read_bytes())
    assert (sealed["opslimit"], sealed["memlimit"]) == (pwhash.argon2id.OPSLIMIT_MODERATE,
                                      pwhash.argon2id.MEMLIMIT_MODERATE)
    assert ks.load("pass") == s


@pytest.mark.parametrize(("ops", "mem"), [
    (2**32 - 1, pwhash.argon2id.MEMLIMIT_MIN),  # hours of hashing
    (pwhash.argon2id.OPSLIMIT_MIN, 2**42),  # 4 TiB of memory
    (0, pwhash.argon2id.MEMLIMIT_MIN),
    (pwhash.argon2id.OPSLIMIT_MIN, 1024),
])
def test_keystore_parameters_from_the_file_are_bounded(tmp_path: Path, ops: int,
                                                       mem: int) -> None:
    import time

    import msgspec

    from tenchat.client.keystore import KeystoreError

    ks = Keystore.in_home(tmp_path)
    ks.save(secrets(), "pass", **FAST)
    sealed = msgspec.msgpack.decode(ks.path.read_bytes())
    sealed["opslimit"], sealed["memlimit"] = ops, mem
    ks.path.write_bytes(msgspec.msgpack.encode(sealed))
    start = time.monotonic()
    with pytest.raises(KeystoreError, match="out of bounds"):
        ks.load("pass")
    assert time.monotonic() - start < 1.0  # refused before any hashing


def test_kdf_level_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenchat.client.keystore import KeystoreError, kdf_level

    monkeypatch.setenv("TENCHAT_KDF", "interactive")
    assert kdf_level() == (pwhash.argon2id.OPSLIMIT_INTERACTIVE,
                           pwhash.argon2id.MEMLIMIT_INTERACTIVE)
    monkeypatch.setenv("TENCHAT_KDF", "weak")
    with pytest.raises(KeystoreError, match="TENCHAT_KDF"):
        kdf_level()


# --- security review M7: the upgrade on unlock vs other processes --------------------------

_UPGRADE = """
import sys
from tenchat.client.keystore import Keystore
from pathlib import Path
Keystore(Path(sys.argv[1])).load("pass", upgrade=True)
"""


def _weak_keystore(path: Path) -> Secrets:
    s = Secrets(identity_seed=os.urandom(32), storage_key=os.urandom(32), handle="a",
                relay="ws://x")
    Keystore(path).save(s, "pass", opslimit=pwhash.argon2id.OPSLIMIT_MIN,
                        memlimit=pwhash.argon2id.MEMLIMIT_MIN)
    return s


@pytest.mark.slow
def test_the_upgrade_waits_for_the_home_lock(tmp_path: Path) -> None:
    """While another process holds the home's lock, an unlock does not rewrite the
    keystore (it used to, outside the lock)."""
    import fcntl
    import subprocess
    import sys

    path = tmp_path / "keystore.msgpack"
    s = _weak_keystore(path)
    before = path.read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({str(tmp_path / 'lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert Keystore(path).load("pass", upgrade=True) == s
        assert path.read_bytes() == before  # not touched while the home was locked
    finally:
        holder.kill()
        holder.wait()
    fd = os.open(tmp_path / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    os.close(fd)
    assert Keystore(path).load("pass", upgrade=True) == s
    assert path.read_bytes() != before  # upgraded once the lock was free
    assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []


@pytest.mark.slow
def test_parallel_unlocks_killed_at_random_never_lose_the_keystore(tmp_path: Path) -> None:
    """Six processes unlock (and upgrade) one old keystore at once, some SIGKILLed at
    random moments: the keystore always loads afterwards, with the same secrets."""
    import random
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "keystore.msgpack"
    s = _weak_keystore(path)
    env = dict(os.environ, TENCHAT_KDF="interactive")
    rng = random.Random(1)
    for _ in range(4):
        procs = [subprocess.Popen([sys.executable, "-c", _UPGRADE, str(path)], env=env,
                                  stderr=subprocess.DEVNULL) for _ in range(6)]
        time.sleep(rng.uniform(0.2, 0.6))
        for p in procs:
            if rng.random() < 0.5:
                p.send_signal(signal.SIGKILL)
            time.sleep(rng.uniform(0, 0.05))
            assert Keystore(path).load("pass") == s
        for p in procs:
            p.wait()
        assert Keystore(path).load("pass") == s
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("keystore.")] == [
        "keystore.msgpack"]
