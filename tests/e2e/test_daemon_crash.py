"""A daemon SIGKILLed while scripts send through it: nothing lost, nothing twice.

The rule (client/launch.py, docs/rpc.md): every `tenchat send` carries its own message id;
one whose answer never came is sent again with that id — through a daemon if one is back,
else directly — and a message the home already has under that id is not queued again
(the relay, too, keeps one copy per sender and id). So every send that exits 0 is
delivered exactly once, and a send is never delivered twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.conftest import Cli
from tests.support.rpc import start_daemon, stop_daemon

pytestmark = pytest.mark.slow

N = 10


def sends(cli: Cli, round_: int) -> list[subprocess.Popen[str]]:
    return [subprocess.Popen(
        [sys.executable, "-m", "tenchat.client", "--home", str(cli.home("alice")), "--json",
         "send", "bob", f"round {round_} message {i}"],
        env=cli.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(N)]


@pytest.mark.parametrize("kill_after", [0, 2])
def test_sigkill_mid_send_loses_nothing_and_duplicates_nothing(cli: Cli,
                                                               kill_after: int) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    cli("alice", "send", "bob", "warm-up")  # a session exists: sends are quick and many
    expected: list[str] = []
    for round_ in range(2):
        daemon = start_daemon(cli.home("alice"), cli.env(), cli.base / "daemon.log")
        procs = sends(cli, round_)
        expected += [f"round {round_} message {i}" for i in range(N)]
        # Kill once `kill_after` of them have been answered: the rest are on their way
        # (queued, encrypted, at the relay, or not yet connected).
        deadline = time.monotonic() + 60
        while sum(p.poll() is not None for p in procs) < kill_after:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait()
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            assert "Traceback" not in err
        stop_daemon(daemon)

    got = Counter(m["text"] for m in cli("bob", "--json", "inbox").json_lines())
    assert got == Counter(["warm-up", *expected])  # every one, each once
    mine = Counter(m["text"] for m in
                   cli("alice", "--json", "history", "bob", "-n", "100").json_lines())
    assert mine == got
