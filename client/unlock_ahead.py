"""The keystore unlocked ahead: its Argon2id started in a helper process as a command starts.

Unlocking is most of a command's start-up: Argon2id at the keystore's level (MODERATE:
~0.4 s of one core, 256 MiB). ``client/launch.py`` starts it here before the CLI or the
TUI is even imported when the passphrase comes from ``TENCHAT_PASSPHRASE``
(``cli_common.open_tui`` for a TUI given ``--passphrase-file``); whoever unlocks the home
next (``cli_common.open_client``, ``Client.unlock`` for the TUI) takes the key instead of
deriving it again and only decrypts. So a command pays for its imports and its key
derivation at the same time.

A process of its own, not a thread: Argon2id runs without the GIL either way, but on a
thread its 256 MiB is faulted in within the command's own address space, and the
command's start (imports, allocations) slowed waiting on it (the TUI's first output ~80 ms)
(docs/performance.md). The helper is this module run as ``python -P -m``: the passphrase goes
to it on a pipe (never in its arguments or environment), ``Keystore.derive`` runs there,
and the key comes back on a pipe with the salt and parameters it is for
(``keystore.DerivedKey``).

Nothing changes for a caller: ``load`` gives or raises what ``Keystore.load(passphrase,
upgrade=True)`` does (a wrong passphrase is the same error: only decrypting tells), and
a key is only taken for the same home and passphrase and the keystore it was derived
from; if the helper failed for any reason, the caller derives the key itself. This module
imports only the standard library until it is used.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (imported where used: the helper starts on what it needs alone)
    import subprocess

    from .keystore import Secrets

__all__ = ["start", "take", "load", "Ahead"]

KEYSTORE_TIMEOUT = 120.0  # s; Argon2id at SENSITIVE (1 GiB) on a slow machine fits


class Ahead:
    """The helper deriving one home's key."""

    def __init__(self, home: Path, passphrase: str, proc: subprocess.Popen[bytes]) -> None:
        self.home = home
        self.passphrase = passphrase
        self._proc = proc

    def result(self, timeout: float | None = KEYSTORE_TIMEOUT) -> Secrets | None:
        """The home's secrets, decrypted here with the helper's key; None if the helper
        gave none (no keystore, a damaged one, a failure): the caller unlocks itself."""
        import subprocess

        from .keystore import DerivedKey, Keystore

        try:
            out, _ = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.cancel()
            return None
        if self._proc.returncode != 0:
            return None
        import msgspec

        try:
            derived = msgspec.msgpack.decode(out, type=DerivedKey)
        except msgspec.MsgspecError:
            return None
        return Keystore.in_home(self.home).load(self.passphrase, upgrade=True,
                                                derived=derived)

    def cancel(self) -> None:
        """Kill the helper if it still runs (its key is not wanted)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()


_lock = threading.Lock()
_ahead: Ahead | None = None


def start(home: Path, passphrase: str) -> None:
    """Begin deriving ``home``'s key with ``passphrase`` in a helper process (one a
    command that ends first leaves is killed at exit)."""
    global _ahead
    import subprocess

    try:
        secret = passphrase.encode()
    except UnicodeError:  # the caller's own unlock says so
        return
    env = {k: v for k, v in os.environ.items() if k != "TENCHAT_PASSPHRASE"}
    proc: subprocess.Popen[bytes] | None = None
    read_end, write_end = os.pipe()  # the passphrase: a pipe, never argv or environ
    try:
        # -P: not the working directory first on sys.path, as `python -m` would put it (a
        # `tenchat/` package there would be handed the passphrase); the command's own
        # import path otherwise, PYTHONPATH included.
        proc = subprocess.Popen([sys.executable, "-P", "-m", __name__, str(home)],
                                stdin=read_end,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                close_fds=True, env=env)
        os.write(write_end, secret)  # (a pipe takes 64 KiB unread)
    except OSError:  # the caller derives it itself, as without us
        if proc is not None:
            Ahead(home, passphrase, proc).cancel()
        return
    finally:
        os.close(read_end)
        os.close(write_end)
    ahead = Ahead(home.resolve(), passphrase, proc)
    with _lock:
        previous, _ahead = _ahead, ahead
    if previous is not None:
        previous.cancel()
    import atexit

    atexit.register(ahead.cancel)


def take(home: Path, passphrase: str) -> Ahead | None:
    """The unlock started for this home and passphrase (once: it is forgotten here), or
    None if there is none."""
    global _ahead
    with _lock:
        ahead, _ahead = _ahead, None
    if ahead is None:
        return None
    if ahead.home != home.resolve() or ahead.passphrase != passphrase:
        ahead.cancel()
        return None
    return ahead


async def load(home: Path, passphrase: str) -> Secrets:
    """``Keystore.load(passphrase, upgrade=True)`` of ``home``: with the key derived ahead
    if there is one for it, else derived on a thread now (the event loop keeps running)."""
    import asyncio

    from .keystore import Keystore

    ahead = take(home, passphrase)
    if ahead is not None and (secrets := await asyncio.to_thread(ahead.result)) is not None:
        return secrets
    return await asyncio.to_thread(Keystore.in_home(home).load, passphrase, upgrade=True)


def _helper(home: str) -> int:
    """``python -m tenchat.client.unlock_ahead HOME``: the passphrase on stdin, the
    ``DerivedKey`` (msgpack) on stdout. Exit 1, nothing written, on any failure."""
    import msgspec

    from .keystore import Keystore

    try:
        passphrase = sys.stdin.buffer.read().decode()
        derived = Keystore.in_home(Path(home)).derive(passphrase)
    except Exception:  # the caller unlocks itself and says what is wrong
        return 1
    sys.stdout.buffer.write(msgspec.msgpack.encode(derived))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_helper(sys.argv[1]))
