"""examples/echo_bot.py answers through a real daemon: bob writes, the bot echoes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli, read_lines
from tests.support.rpc import start_daemon, stop_daemon

pytestmark = pytest.mark.slow

BOT = Path(__file__).resolve().parents[2] / "examples" / "echo_bot.py"


def test_echo_bot_answers_each_message_once(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    cli("bob", "send", "alice", "sent before the bot started")
    daemon = start_daemon(cli.home("alice"), cli.env(), cli.base / "daemon.log")
    bot = subprocess.Popen([sys.executable, str(BOT), "--home", str(cli.home("alice"))],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={"PATH": "/usr/bin:/bin"})  # the standard library only
    follow = cli.popen("bob", "--json", "inbox", "--follow")
    try:
        assert read_lines(bot.stdout, 1, 30) == ["echo bot ready"]  # type: ignore[arg-type]
        cli("bob", "send", "alice", "ping")
        lines = read_lines(follow.stdout, 2, 60)  # type: ignore[arg-type]
        texts = sorted(json.loads(line)["text"] for line in lines)
        assert texts == ["echo: ping", "echo: sent before the bot started"]
        # a barrier: one more, and only its echo follows (nothing was answered twice)
        cli("bob", "send", "alice", "last")
        last = read_lines(follow.stdout, 1, 60)  # type: ignore[arg-type]
        assert [json.loads(x)["text"] for x in last] == ["echo: last"]
    finally:
        bot.terminate()
        follow.terminate()
        bot.wait(10)
        follow.wait(10)
        stop_daemon(daemon)
    assert bot.stderr is not None and "Traceback" not in bot.stderr.read()
