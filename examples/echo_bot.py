"""An echo bot on tenchat's daemon socket, with nothing but the Python standard library.

    tenchat daemon &                        # owns the home, stays connected
    python3 examples/echo_bot.py            # answers every direct message: "echo: TEXT"

It speaks JSON-RPC 2.0, one JSON value a line, on HOME/rpc.sock (docs/rpc.md): one
``receive`` with ``follow`` streams every message as a ``message`` notification — first
those that arrived while the bot was away, then each as it comes — and each answer is a
``send`` on the same connection. Group messages are left alone; so are its own.

Options: ``--home`` (else TENCHAT_HOME, else the platform's data folder, as for
``tenchat``), ``--prefix`` (what goes before the echoed text).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import sys
from pathlib import Path


def default_home() -> Path:
    if os.environ.get("TENCHAT_HOME"):
        return Path(os.environ["TENCHAT_HOME"])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "tenchat"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "tenchat"


class Daemon:
    """A connection to the daemon: requests out, answers and notifications in."""

    def __init__(self, home: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A deep home makes a path longer than a socket address may be: go through the
        # folder's descriptor instead.
        fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self.sock.connect(f"/proc/self/fd/{fd}/rpc.sock" if sys.platform == "linux"
                              else str(home / "rpc.sock"))
        finally:
            os.close(fd)
        self.lines = self.sock.makefile("rb")
        self.ids = itertools.count(1)

    def request(self, method: str, **params: object) -> int:
        req_id = next(self.ids)
        line = {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params}
        self.sock.sendall(json.dumps(line).encode() + b"\n")
        return req_id

    def messages(self):  # type: ignore[no-untyped-def]
        for line in self.lines:
            yield json.loads(line)


def main() -> int:
    parser = argparse.ArgumentParser(description="Answer tenchat messages with an echo.")
    parser.add_argument("--home", type=Path, default=default_home())
    parser.add_argument("--prefix", default="echo: ")
    args = parser.parse_args()
    try:
        daemon = Daemon(args.home)
    except OSError as exc:
        print(f"error: no tenchat daemon at {args.home} ({exc}); start `tenchat daemon`",
              file=sys.stderr)
        return 1
    daemon.request("receive", follow=True)
    print("echo bot ready", flush=True)
    for msg in daemon.messages():
        if msg.get("method") == "message":
            m = msg["params"]
            if "group" not in m and m.get("text"):
                daemon.request("send", to=m["from"], text=args.prefix + m["text"])
        elif "error" in msg:  # e.g. a send refused: say so, keep answering
            print(f"error: {msg['error']['message']}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
