"""The real ``tenchat`` in tmux against a real relay: bracketed paste, Alt keys and key
bursts, as a terminal delivers them (Textual's pilot never parses terminal bytes)."""

from __future__ import annotations

from pathlib import Path

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


def test_keys_typed_while_it_starts_reach_the_composer(cli: Cli, relay: RelayProcess) -> None:
    """Typed the moment the command runs (the terminal buffers them while Python starts
    and the home unlocks): they wait for the first conversation's composer, none lost."""
    pair(cli)
    assert inbox(cli, "alice") == [("bob", "hello alice")]  # the conversation is in her cache
    with Terminal(cli, "alice") as term:
        term.keys("early bird", "Enter")
        term.wait_for("you: early bird")
    assert inbox(cli, "bob") == [("alice", "early bird")]


def test_alt_keys_act_from_the_composer_and_type_nothing(cli: Cli,
                                                         relay: RelayProcess) -> None:
    pair(cli)
    with Terminal(cli, "alice") as term:
        term.wait_for("hello alice")
        term.keys("hi")
        term.wait_for(lambda s: s.splitlines()[-2].strip(" ▕") == "hi")  # the composer
        term.keys("M-p")  # ESC p: pin (Alt+P)
        term.wait_for("[pinned]")
        term.keys("M-m")  # ESC m: mute
        term.wait_for("[muted]")
        term.keys("F8", "F9")  # the keys every terminal sends distinctly: unmute, unpin
        term.wait_for(lambda s: "[muted]" not in s and "[pinned]" not in s)
        term.keys("F12")  # block (Alt+B can't be: ESC b is what Ctrl+Left sends on a Mac)
        term.wait_for("[blocked]")
        term.keys("F12")
        term.wait_for(lambda s: "[blocked]" not in s)
        term.keys("!", "Enter")
        term.wait_for("you: hi!")
    assert inbox(cli, "bob") == [("alice", "hi!")]  # no "p", "m" typed into the message


def test_a_burst_opening_a_dialog_goes_to_the_dialog(cli: Cli, relay: RelayProcess) -> None:
    """Ctrl+N, a handle and Enter in one write: the handle goes into the new-chat dialog,
    not into the open conversation's composer."""
    pair(cli)
    cli("carol", "init", "--handle", "carol")
    with Terminal(cli, "alice") as term:
        term.wait_for("hello alice")
        term.keys("C-n", "carol", "Enter", "hi carol", "Enter")
        term.wait_for("you: hi carol")
        screen = term.screen()
        assert "@carol" in screen
    assert inbox(cli, "carol") == [("alice", "hi carol")]
    assert inbox(cli, "bob") == []


def test_compose_in_editor(cli: Cli, relay: RelayProcess, tmp_path: Path) -> None:
    """F7 hands the draft to \\$EDITOR (the terminal is the editor's meanwhile) and takes
    back what it saved."""
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "%s, from the editor\\n" "$(cat "$1")" > "$1"\n')
    editor.chmod(0o755)
    pair(cli)
    with Terminal(cli, "alice", env={"EDITOR": str(editor), "VISUAL": ""}) as term:
        term.wait_for("hello alice")
        term.keys("draft")
        term.wait_for(lambda s: s.splitlines()[-2].strip(" ▕") == "draft")
        term.keys("F7")
        term.wait_for(lambda s: s.splitlines()[-2].strip(" ▕") == "draft, from the editor")
        term.keys("Enter")
        term.wait_for("you: draft, from")
    assert inbox(cli, "bob") == [("alice", "draft, from the editor")]


def test_wide_emoji_keep_the_divider_in_place(cli: Cli, relay: RelayProcess) -> None:
    """👋🏽 (a skin-tone modifier: 4 cells in tmux, 2 for Rich) in the sidebar's preview
    used to push its divider to the right."""
    pair(cli)
    cli("bob", "send", "alice", "👋🏽 hello from the far side ❤️ 👋🏽 👋🏽 👋🏽 👋🏽 👋🏽 👋🏽")
    with Terminal(cli, "alice") as term:
        screen = term.wait_for(lambda s: any("👋" in line.split("▕")[0]
                                             for line in s.splitlines()))
    # every line above the status bar has its divider, all in one column, counted as
    # tmux draws (wide characters take two cells)
    lines = screen.splitlines()[:-1]
    assert all("▕" in line for line in lines), screen
    columns = {_cells(line.split("▕")[0]) for line in lines}
    assert len(columns) == 1, screen


def _cells(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) == "W" else
               0 if unicodedata.combining(c) or c == "\ufe0f" else 1 for c in text)


def test_auto_typed_first_run_form_fills_each_field(cli: Cli, relay: RelayProcess) -> None:
    """A password manager types the whole form at once (fields separated by Tab, Enter at
    the end): every field gets its own part, and the identity is created."""
    secret = "correct horse battery staple"
    with Terminal(cli, "erin") as term:
        term.wait_for("e.g. alice")
        assert relay.url in term.screen()  # the relay field, filled in from TENCHAT_RELAY
        # handle, the relay as it is, passphrase, confirmation, Enter — in one write
        term.keys("erin", "Tab", "Tab", secret, "Tab", secret, "Enter")
        term.wait_for("No conversations yet", timeout=30)
    assert cli("erin", "--json", "whoami").json()["handle"] == "erin"
