"""The keystore unlocked ahead: its Argon2id started on a thread as a command starts.

Unlocking is most of a command's start-up: Argon2id at the keystore's level (MODERATE:
~0.4 s of one core) runs in C without the GIL. ``client/launch.py`` starts it here,
before the CLI or the TUI is even imported, when the passphrase comes from
``TENCHAT_PASSPHRASE``; whoever unlocks the home next (``cli_common.open_client``,
``Client.unlock`` for the TUI) takes the result instead of deriving the key again. So a
scripted ``tenchat send`` pays for its imports (typer, asyncio, websockets, the client)
and its key derivation at the same time, not one after the other.

Nothing changes for a caller: the result is what ``Keystore.load(passphrase,
upgrade=True)`` gives or raises (a wrong passphrase is the same error), and it is only
taken for the same home and the same passphrase; otherwise the caller unlocks as before.
This module imports only the standard library until its thread runs.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .keystore import Secrets

__all__ = ["start", "take", "load"]

_lock = threading.Lock()
_ahead: tuple[Path, str, Future[Secrets | None]] | None = None


def start(home: Path, passphrase: str) -> None:
    """Begin unlocking ``home``'s keystore with ``passphrase`` on a daemon thread (a
    command that ends first does not wait for it)."""
    global _ahead
    done: Future[Secrets | None] = Future()

    def unlock() -> None:
        try:
            from .keystore import Keystore

            keystore = Keystore.in_home(home)
            done.set_result(keystore.load(passphrase, upgrade=True)
                            if keystore.exists() else None)
        except BaseException as exc:  # handed to whoever takes it
            done.set_exception(exc)

    with _lock:
        _ahead = (home.resolve(), passphrase, done)
    threading.Thread(target=unlock, name="unlock-ahead", daemon=True).start()


def take(home: Path, passphrase: str) -> Future[Secrets | None] | None:
    """The unlock started for this home and passphrase (once: it is forgotten here), or
    None if there is none. Its result is None when the home has no keystore."""
    global _ahead
    with _lock:
        ahead, _ahead = _ahead, None
    if ahead is None or ahead[0] != home.resolve() or ahead[1] != passphrase:
        return None
    return ahead[2]


async def load(home: Path, passphrase: str) -> Secrets:
    """``Keystore.load(passphrase, upgrade=True)`` of ``home``: the unlock started ahead
    if there is one for it, else on a thread now (the event loop keeps running)."""
    from .keystore import Keystore

    ahead = take(home, passphrase)
    if ahead is not None and (secrets := await asyncio.wrap_future(ahead)) is not None:
        return secrets
    return await asyncio.to_thread(Keystore.in_home(home).load, passphrase, upgrade=True)
