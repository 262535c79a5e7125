"""The keystore unlocked ahead (client/unlock_ahead.py): what a command takes is exactly
what unlocking it itself gives — the same secrets, the same errors — and only for the
home and passphrase it was started for; the entry point starts it only where a command
will unlock with TENCHAT_PASSPHRASE."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import msgspec
import pytest
from nacl import pwhash

from tenchat.client import launch, unlock_ahead
from tenchat.client.keystore import DerivedKey, Keystore, NoIdentity, Secrets, WrongPassphrase

FAST = {"opslimit": pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        "memlimit": pwhash.argon2id.MEMLIMIT_INTERACTIVE}


@pytest.fixture(autouse=True)
def _interactive_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    # load(upgrade=True) would otherwise rewrite the keystore at MODERATE
    monkeypatch.setenv("TENCHAT_KDF", "interactive")
    unlock_ahead.take(Path("/"), "")  # nothing left over from another test


def _home(tmp_path: Path) -> tuple[Path, Secrets]:
    home = tmp_path / "home"
    secrets = Secrets(identity_seed=os.urandom(32), storage_key=os.urandom(32),
                      handle="alice", relay="ws://127.0.0.1:1")
    Keystore.in_home(home).save(secrets, "right", **FAST)
    return home, secrets


def test_the_unlock_taken_is_the_keystore_s_secrets_once(tmp_path: Path) -> None:
    home, secrets = _home(tmp_path)
    unlock_ahead.start(home, "right")
    ahead = unlock_ahead.take(home / "." / "", "right")  # the same home, spelled otherwise
    assert ahead is not None and ahead.result(30) == secrets
    assert unlock_ahead.take(home, "right") is None  # taken once


def test_the_passphrase_goes_to_the_helper_on_a_pipe_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, _ = _home(tmp_path)
    monkeypatch.setenv("TENCHAT_PASSPHRASE", "right")  # where launch.py took it from
    unlock_ahead.start(home, "right")
    ahead = unlock_ahead.take(home, "right")
    assert ahead is not None
    proc = ahead._proc
    # (the helper has exec'd when Popen returns, and takes ~50 ms to start Python)
    environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
    assert b"TENCHAT_PASSPHRASE=" not in environ
    assert environ  # (read before it exited: a zombie's environ is empty)
    assert not any("right" in str(a) for a in proc.args)  # not in its command line
    assert proc.stdin is None  # its stdin was a pipe written once and closed
    ahead.result(30)
    assert proc.returncode == 0


def test_a_tenchat_package_in_the_working_directory_is_not_the_helper(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m` puts the working directory first on sys.path: a `tenchat/` there (a
    clone of someone's repository, say) would be imported as the helper and read the
    passphrase."""
    home, secrets = _home(tmp_path)
    planted = tmp_path / "cwd" / "tenchat" / "client"
    planted.mkdir(parents=True)
    marker = tmp_path / "stolen"
    for d in (planted.parent, planted):
        (d / "__init__.py").write_text("")
    (planted / "unlock_ahead.py").write_text(
        f"import sys; open({str(marker)!r}, 'wb').write(sys.stdin.buffer.read())\n")
    monkeypatch.chdir(planted.parent.parent)
    unlock_ahead.start(home, "right")
    ahead = unlock_ahead.take(home, "right")
    assert ahead is not None and ahead.result(30) == secrets  # the real helper's key
    assert not marker.exists()


def test_a_key_derived_for_a_keystore_since_replaced_is_not_used(tmp_path: Path) -> None:
    home, _ = _home(tmp_path)
    unlock_ahead.start(home, "right")
    ahead = unlock_ahead.take(home, "right")
    assert ahead is not None
    out, _ = ahead._proc.communicate(timeout=30)  # the helper's key for the first file
    derived = msgspec.msgpack.decode(out, type=DerivedKey)
    newer = Secrets(identity_seed=os.urandom(32), storage_key=os.urandom(32),
                    handle="alice", relay="ws://127.0.0.1:2")
    Keystore.in_home(home).save(newer, "right", **FAST)  # a new salt (passwd, restore)
    assert Keystore.in_home(home).load("right", derived=derived) == newer  # derived anew


def test_a_helper_that_fails_leaves_the_caller_to_unlock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, secrets = _home(tmp_path)
    monkeypatch.setattr(unlock_ahead.sys, "executable", str(tmp_path / "no-python"))
    unlock_ahead.start(home, "right")  # cannot start: nothing ahead
    assert unlock_ahead.take(home, "right") is None
    monkeypatch.undo()
    monkeypatch.setenv("TENCHAT_KDF", "interactive")
    (home / "keystore.msgpack").write_bytes(b"damaged")
    unlock_ahead.start(home, "right")
    ahead = unlock_ahead.take(home, "right")
    assert ahead is not None and ahead.result(30) is None  # the helper exited 1


def test_another_home_or_passphrase_takes_nothing(tmp_path: Path) -> None:
    home, secrets = _home(tmp_path)
    unlock_ahead.start(home, "right")
    assert unlock_ahead.take(home, "other") is None
    unlock_ahead.start(home, "right")
    assert unlock_ahead.take(tmp_path, "right") is None
    # load() then unlocks itself, with the same outcome
    assert asyncio.run(unlock_ahead.load(home, "right")) == secrets


def test_a_wrong_passphrase_is_the_same_error(tmp_path: Path) -> None:
    home, _ = _home(tmp_path)
    unlock_ahead.start(home, "wrong")
    with pytest.raises(WrongPassphrase):
        asyncio.run(unlock_ahead.load(home, "wrong"))


def test_no_keystore_is_the_same_error(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    unlock_ahead.start(home, "right")
    with pytest.raises(NoIdentity):  # the ahead result is None: load() unlocks itself
        asyncio.run(unlock_ahead.load(home, "right"))


@pytest.mark.parametrize(("argv", "started"), [
    (["--home", "H", "send", "bob", "hi"], True),
    (["--home", "H"], True),  # the TUI
    (["--home", "H", "chat"], True),
    (["--home", "H", "init", "--handle", "a"], False),
    (["--home", "H", "demo"], False),
    (["--home", "H", "--passphrase-file", "F", "send", "bob", "hi"], False),
    (["--home", "H", "send", "--help"], False),
])
def test_the_entry_point_starts_it_only_where_it_is_used(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], started: bool) -> None:
    calls: list[tuple[Path, str]] = []
    monkeypatch.setattr(unlock_ahead, "start", lambda home, p: calls.append((home, p)))
    monkeypatch.setenv("TENCHAT_PASSPHRASE", "right")
    argv = [str(tmp_path) if a == "H" else a for a in argv]
    launch._unlock_ahead(argv, launch.command_of(argv)[0])
    assert calls == ([(tmp_path, "right")] if started else [])
    monkeypatch.delenv("TENCHAT_PASSPHRASE")
    launch._unlock_ahead(argv, launch.command_of(argv)[0])
    assert len(calls) == started  # no passphrase in the environment: nothing new
