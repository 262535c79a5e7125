"""Where a home's daemon listens (HOME/rpc.sock) and which `tenchat` commands it may run
for a caller: shared by the entry point (client/launch.py) and the daemon
(client/daemon.py), so neither imports the other."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SOCKET_NAME", "socket_path", "command_of", "runs_here"]

SOCKET_NAME = "rpc.sock"
# Commands that stay in this process: the TUI and what creates or serves the home…
_LOCAL = frozenset({None, "init", "daemon", "demo", "chat"})
_VALUE_OPTIONS = ("--home", "--relay", "--passphrase-file")  # cli.VALUE_OPTIONS
_MAX_UNIX_PATH = 100  # sun_path is 108 bytes


def socket_path(home: Path) -> Path:
    return home / SOCKET_NAME


def _address(path: Path) -> tuple[str, int | None]:
    """A path ``bind``/``connect`` accept: a long one (deep temporary folders) goes through
    an open descriptor of its folder, ``/proc/self/fd/N/rpc.sock``."""
    text = str(path)
    if len(text.encode()) <= _MAX_UNIX_PATH:
        return text, None
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{path.name}", fd


def command_of(argv: list[str]) -> tuple[str | None, int]:
    """The command name and its index (cli.invoked_command's rule); None if none, or
    help or the version was asked for before it."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--help", "-h", "--version"):
            return None, i
        if arg == "--":
            return (argv[i + 1], i + 1) if i + 1 < len(argv) else (None, i)
        if arg.startswith("-"):
            i += 2 if arg in _VALUE_OPTIONS else 1
            continue
        return arg, i
    return None, i


def runs_here(argv: list[str], name: str | None, at: int) -> bool:
    """…and what may ask the person at this terminal: a gift's "Sign and send?", a wallet
    keystore's password (from a prompt, or TENCHAT_WALLET_PASSWORD in this environment)."""
    if name in _LOCAL:
        return True
    if name == "gift":
        return "--yes" not in argv
    return name == "wallet" and argv[at + 1:at + 2] == ["import"]
