"""Several tenchat processes on one home at once (issue 12, item 4): real CLI processes,
a real relay. Every message must reach the peer decryptable, and one session is made."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenchat.client.cache import Cache
from tenchat.client.keystore import Keystore
from tests.conftest import PASSPHRASE, Cli, read_lines

pytestmark = pytest.mark.slow

N = 6


async def session_count(home: Path, peer: bytes) -> int:
    """The sessions with ``peer`` in the cache of ``home`` (read after the processes ended)."""
    cache = await Cache.open(home, Keystore.in_home(home).load(PASSPHRASE).storage_key)
    try:
        return len(await cache.sessions.of(peer))
    finally:
        await cache.close()


@pytest.mark.asyncio
async def test_parallel_sends_from_one_home_all_decrypt(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    bob = bytes.fromhex(cli("bob", "--json", "init", "--handle", "bob").json()["user_id"])
    # bob is new to alice: the six race to look him up and to start the session
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tenchat.client", "--home", str(cli.home("alice")),
             "--json", "send", "bob", f"parallel message {i}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env(),
        )
        for i in range(N)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * N, [err for _, err in outs]

    assert await session_count(cli.home("alice"), bob) == 1  # not one per process

    got = cli("bob", "--json", "inbox").json_lines()
    assert sorted(m["text"] for m in got) == sorted(f"parallel message {i}" for i in range(N))
    # bob answers on the one session alice made; alice reads it, and her 6 turn delivered.
    cli("bob", "send", "alice", "got all six")
    assert [m["text"] for m in cli("alice", "--json", "inbox").json_lines()] == ["got all six"]
    hist = cli("alice", "--json", "history", "bob").json_lines()
    assert sorted(m["status"] for m in hist if m["from"] == "alice") == ["delivered"] * N


def test_lock_wait_times_out_with_a_clear_error(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    lock = cli.home("alice") / "lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a stuck process holding the home
        started = time.monotonic()
        res = cli("alice", "send", "bob", "hello", check=False,
                  env=cli.env(TENCHAT_LOCK_TIMEOUT="0.5"))
        assert res.code == 1
        assert res.err.startswith("error: another tenchat process has held ")
        assert "Traceback" not in res.err and len(res.err.strip().splitlines()) == 1
        assert time.monotonic() - started < 30
    finally:
        os.close(fd)
    # Released: the same command goes through.
    assert cli("alice", "--json", "send", "bob", "hello").json()["status"] == "sent"


def test_a_long_running_client_does_not_block_scripts_on_its_home(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    # alice's home stays open in a long-running process (as the TUI would be) ...
    follower = cli.popen("alice", "--json", "inbox", "--follow")
    assert follower.stdout is not None
    try:
        cli("bob", "send", "alice", "are you there?")
        (line,) = read_lines(follower.stdout, 1, 30)
        assert "are you there?" in line
        # ... while scripts send from that same home, in parallel: none waits for it to end.
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "tenchat.client", "--home", str(cli.home("alice")),
                 "send", "bob", f"from a script {i}"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env(),
            )
            for i in range(3)
        ]
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0] * 3, [err for _, err in outs]
        got = cli("bob", "--json", "inbox").json_lines()
        assert sorted(m["text"] for m in got) == [f"from a script {i}" for i in range(3)]
        cli("bob", "send", "alice", "yes, all three")  # still read by the open process
        (line,) = read_lines(follower.stdout, 1, 30)
        assert "yes, all three" in line
    finally:
        follower.terminate()
        follower.wait(10)
