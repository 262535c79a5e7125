"""The TUI and a script sending through one daemon at once: the open TUI serves the home's
socket (docs/rpc.md), so `tenchat send` from a script goes through it — no passphrase, one
receiver, one relay connection — while the user types in the TUI."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from tests.conftest import Cli
from tests.support.relay import RelayProcess
from tests.tui.terminal import Terminal, needs_tmux

pytestmark = [pytest.mark.slow, needs_tmux]

N = 5


@pytest.mark.usefixtures("paired")
def test_tui_and_a_script_send_through_one_daemon_at_once(cli: Cli,
                                                         relay: RelayProcess) -> None:
    home = cli.home("alice")
    script_env = cli.env()
    del script_env["TENCHAT_PASSPHRASE"]  # only the TUI's socket can serve this script
    with Terminal(cli, "alice") as term:
        term.wait_for("hello alice")
        term.wait_for("online")
        assert (home / "rpc.sock").exists()
        scripts = [subprocess.Popen(
            [sys.executable, "-m", "tenchat.client", "--home", str(home), "send", "bob",
             f"from the script {i}"], env=script_env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True) for i in range(N)]
        for i in range(3):  # meanwhile, the user types
            term.keys(f"typed in the tui {i}", "Enter")
            term.wait_for(f"alice │ typed in the tui {i}")
        for proc in scripts:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            assert out.startswith("sent ")
        # the TUI shows what the script sent through it
        term.wait_for(lambda s: all(f"alice │ from the script {i}" in s for i in range(N)))
    # The TUI was killed with its terminal: its socket file is left, nobody listens, and
    # the next command runs directly (with the passphrase).
    cli("alice", "send", "bob", "after the tui")
    got = Counter(m["text"] for m in cli("bob", "--json", "inbox").json_lines())
    assert got == Counter([f"from the script {i}" for i in range(N)]
                          + [f"typed in the tui {i}" for i in range(3)] + ["after the tui"])
