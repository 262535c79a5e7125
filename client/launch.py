"""The `tenchat` entry point: through the home's daemon if one serves it, else the CLI.

While a daemon (``tenchat daemon``) or the TUI holds a home, its socket ``HOME/rpc.sock``
accepts connections, and every command goes through it: this module sends the argument
list, the working directory and (for ``-`` arguments) standard input as one ``cli``
request, copies the output notifications to stdout/stderr and exits with the command's
status. It imports a few standard modules only (not typer, asyncio, nacl or aiosqlite,
not even typing): a scripted ``tenchat send`` through the daemon is an interpreter start
and one socket round trip. With no daemon (no socket, or nobody listening: a daemon that
died leaves its socket file) it runs the CLI in this process as before.

A send whose answer never came (the daemon died mid-send) is retried once, with the same
message id the first attempt carried (``--message-id``), through a daemon if one is back,
else directly: a message the home already has under that id is not queued again and the
relay keeps one copy per id, so the retry never duplicates it. Other commands are not
retried; they fail with one ``error:`` line saying the daemon went away.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from .home_socket import (
    SOCKET_NAME,
    _address,
    command_of,
    runs_here,
    socket_path,
)

__all__ = ["SOCKET_NAME", "socket_path", "connect", "main", "DaemonGone"]

class DaemonGone(Exception):
    """The daemon closed the connection before answering."""


def connect(home: Path) -> socket.socket | None:
    """A connection to the home's daemon, or None if no daemon serves it."""
    path = socket_path(home)
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address, fd = _address(path)
    try:
        sock.connect(address)
    except OSError:  # refused: a dead daemon's socket file; or not ours to open
        sock.close()
        return None
    finally:
        if fd is not None:
            os.close(fd)
    return sock


def _home(argv: list[str]) -> Path:
    for i, arg in enumerate(argv):
        if arg == "--home" and i + 1 < len(argv):
            return Path(argv[i + 1]).expanduser().absolute()
        if arg.startswith("--home="):
            return Path(arg.split("=", 1)[1]).expanduser().absolute()
        if not arg.startswith("-"):
            break
    if env := os.environ.get("TENCHAT_HOME"):
        return Path(env).expanduser().absolute()
    from platformdirs import user_data_dir

    return Path(user_data_dir("tenchat", appauthor=False))


def _with_message_id(argv: list[str], at: int) -> list[str]:
    """``send`` and ``group send`` of a text get their own id, so a retry is the same
    message (not with --attach: the upload is not repeated; such a send is not retried)."""
    name = argv[at]
    after = at + 1
    if name == "group":
        if at + 1 >= len(argv) or argv[at + 1] != "send":
            return argv
        after = at + 2
    elif name != "send":
        return argv
    if "--attach" in argv or "--message-id" in argv or "--help" in argv:
        return argv
    return [*argv[:after], "--message-id", os.urandom(16).hex(), *argv[after:]]


def call(sock: socket.socket, argv: list[str]) -> int:
    """One ``cli`` request; the command's exit status. DaemonGone if no answer came."""
    stdin = sys.stdin.read() if "-" in argv else ""
    request = {"jsonrpc": "2.0", "id": 1, "method": "cli",
               "params": {"argv": argv, "cwd": os.getcwd(), "stdin": stdin}}
    sock.sendall(json.dumps(request).encode() + b"\n")
    reader = sock.makefile("rb")
    for line in reader:
        msg = json.loads(line)
        if msg.get("method") == "cli.output":
            params = msg["params"]
            stream = sys.stdout if params["stream"] == "stdout" else sys.stderr
            stream.write(params["text"])
            stream.flush()
        elif msg.get("id") == 1:
            if "error" in msg:
                sys.stderr.write(f"error: {msg['error']['message']}\n")
                return 1
            return int(msg["result"]["exit"])
    raise DaemonGone


# Commands not unlocked ahead: init makes the keystore, demo has a home of its own, relay
# rarely unlocks. The TUI (no command, or chat) is: its app takes the key at its mount.
_NO_UNLOCK = frozenset({"init", "demo", "relay"})


def _unlock_ahead(argv: list[str], name: str | None) -> None:
    """Start deriving the keystore's key now, in a helper process, for a command run in
    this process with its passphrase in TENCHAT_PASSPHRASE: its ~0.4 s of Argon2id
    overlaps the CLI's and the TUI's imports (client/unlock_ahead.py)."""
    passphrase = os.environ.get("TENCHAT_PASSPHRASE")
    if (not passphrase or name in _NO_UNLOCK or "--passphrase-file" in argv
            or any(a.startswith("--passphrase-file=") for a in argv)
            or any(a in ("--help", "-h", "--version") for a in argv)):
        return
    from .unlock_ahead import start

    start(_home(argv), passphrase)


def main() -> None:
    argv = sys.argv[1:]
    name, at = command_of(argv)
    if not runs_here(argv, name, at):
        argv = _with_message_id(argv, at)
        sock = connect(_home(argv))
        if sock is not None:
            try:
                with sock:
                    sys.exit(call(sock, argv))
            except (DaemonGone, ConnectionError):
                if "--message-id" not in argv:
                    sys.stderr.write("error: the tenchat daemon went away before answering; "
                                     "the command may or may not have run\n")
                    sys.exit(1)
            # A send not answered: the same send again (same id), through a daemon if one
            # is back, else below in this process.
            retry = connect(_home(argv))
            if retry is not None:
                with retry:
                    try:  # (not contextlib.suppress: that import costs start-up time)  # noqa: SIM105
                        sys.exit(call(retry, argv))
                    except (DaemonGone, ConnectionError):
                        pass
        sys.argv[1:] = argv
    _unlock_ahead(argv, name)
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
