"""The real ``tenchat`` in a real pseudo-terminal (tmux), for what Textual's pilot can't
see: how the terminal's bytes (bracketed paste, ESC-prefixed Alt keys, bursts of keys
written at once) are read.

    with Terminal(cli, "alice") as term:
        term.wait_for("hello alice")
        term.keys("C-n", "alice", "Enter")   # one tmux command: one burst of bytes
        term.paste("line A\\nline B")          # bracketed paste (paste-buffer -p)

Each terminal gets its own tmux server (``-L``), killed on exit.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli

TMUX = shutil.which("tmux")
needs_tmux = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


class Terminal:
    """``tenchat --home HOME`` (the TUI) running in a detached tmux session."""

    def __init__(self, cli: Cli, who: str, *, width: int = 120, height: int = 36,
                 env: dict[str, str] | None = None) -> None:
        self.socket = f"tenchat-test-{uuid.uuid4().hex[:10]}"
        self.size = (width, height)
        self.cli = cli
        self.who = who
        self.env = cli.env(TERM="xterm-256color", **(env or {}))
        # Textual sizes its screen by COLUMNS / LINES when they are set (pytest-xdist's
        # workers have COLUMNS=80, LINES=24): the pane's own size must win.
        for name in ("COLUMNS", "LINES"):
            self.env.pop(name, None)

    def tmux(self, *args: str, check: bool = True, input: bytes | None = None) -> str:
        assert TMUX is not None
        proc = subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True,
                              input=input, env=self.env, timeout=20)
        if check and proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {proc.stderr.decode()}")
        return proc.stdout.decode()

    def __enter__(self) -> Terminal:
        width, height = self.size
        command = " ".join(shlex.quote(part) for part in (
            sys.executable, "-m", "tenchat.client", "--home", str(self.cli.home(self.who))))
        self.tmux("-f", os.devnull, "new-session", "-d", "-x", str(width), "-y", str(height),
                  "-s", "t", command)
        self.tmux("set-option", "-g", "remain-on-exit", "on")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.tmux("kill-server", check=False)

    # --- reading ------------------------------------------------------------------------

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t")

    def wait_for(self, check: str | Callable[[str], Any], timeout: float = 20.0) -> str:
        """Poll the screen until it shows ``check`` (text, or a predicate on the screen)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if (check in text) if isinstance(check, str) else check(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {check!r}; screen:\n{text}")
            time.sleep(0.05)

    # --- writing ------------------------------------------------------------------------

    def keys(self, *keys: str) -> None:
        """tmux key names (``C-n``, ``Enter``, ``M-m``) and literal words, sent as one
        burst: tmux writes them to the pane in a single command."""
        self.tmux("send-keys", "-t", "t", *keys)

    def raw(self, data: bytes) -> None:
        """Bytes exactly as given (an ESC-prefixed key, a whole escape sequence)."""
        self.tmux("send-keys", "-t", "t", "-H", *(f"{b:02x}" for b in data))

    def paste(self, text: str) -> None:
        """A bracketed paste of ``text`` (the application asked for bracketed paste)."""
        self.tmux("load-buffer", "-b", "p", "-", input=text.encode())
        self.tmux("paste-buffer", "-p", "-d", "-b", "p", "-t", "t")


def home_path(cli: Cli, who: str) -> Path:
    return cli.home(who)
