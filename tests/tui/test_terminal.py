"""The real ``tenchat`` in tmux against a real relay: bracketed paste, Alt keys and key
bursts, as a terminal delivers them (Textual's pilot never parses terminal bytes)."""

from __future__ import annotations

import pytest

from tests.conftest import Cli
from tests.support.relay import RelayProcess
from tests.tui.conftest import pair
from tests.tui.terminal import Terminal, needs_tmux

pytestmark = [pytest.mark.slow, needs_tmux]


def inbox(cli: Cli, who: str) -> list[tuple[str, str]]:
    return [(m["from"], m["text"]) for m in cli(who, "--json", "inbox").json_lines()]


def test_bracketed_paste_is_inserted_once(cli: Cli, relay: RelayProcess) -> None:
    pair(cli)
    with Terminal(cli, "alice") as term:
        term.wait_for("hello alice")
        term.wait_for("online")
        term.paste("line A\nline B\nline C")
        term.wait_for("line C")
        term.keys("Enter")
        term.wait_for(lambda s: "you: line A" in s and "Write a message" in s)
        big = "x" * 5000 + " END"
        term.paste(big)
        term.wait_for(" END")
        term.keys("Enter")
        term.wait_for(lambda s: "you: xxx" in s and "Write a message" in s)
    got = inbox(cli, "bob")
    assert got == [("alice", "line A\nline B\nline C"), ("alice", big)]
