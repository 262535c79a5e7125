"""The `tenchat` entry point's argument reading (client/launch.py) agrees with the CLI's:
which command is asked for, where the home is, and which sends get their own id."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenchat.client import launch
from tenchat.client.cli import VALUE_OPTIONS, invoked_command


def test_value_options_are_the_clis() -> None:
    assert frozenset(launch._VALUE_OPTIONS) == VALUE_OPTIONS


@pytest.mark.parametrize("argv", [
    [], ["send", "bob", "hi"], ["--home", "send", "whoami"], ["--json", "group", "send", "g"],
    ["--relay", "ws://x", "--json", "inbox"], ["--help"], ["-h", "send"], ["--", "send"],
    ["--passphrase-file", "p", "history", "bob"], ["--json"],
])
def test_the_command_is_the_one_the_cli_sees(argv: list[str]) -> None:
    name, at = launch.command_of(argv)
    assert name == invoked_command(argv)
    if name is not None:
        assert argv[at] == name


def test_version_stays_local() -> None:
    assert launch.command_of(["--version"])[0] is None


def test_home_from_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv("TENCHAT_HOME", str(tmp_path / "env"))
    assert launch._home(["--home", str(tmp_path / "opt"), "send"]) == tmp_path / "opt"
    assert launch._home([f"--home={tmp_path / 'eq'}", "send"]) == tmp_path / "eq"
    assert launch._home(["send", "--home", "not-an-option-here"]) == tmp_path / "env"


def test_text_sends_get_an_id_and_nothing_else_does() -> None:
    sent = launch._with_message_id(["--json", "send", "bob", "hi"], 1)
    assert sent[:3] == ["--json", "send", "--message-id"] and len(bytes.fromhex(sent[3])) == 16
    assert sent[4:] == ["bob", "hi"]
    group = launch._with_message_id(["group", "send", "team", "hi"], 0)
    assert group[2] == "--message-id"
    for argv, at in ((["send", "bob", "--attach", "f"], 0), (["group", "list"], 0),
                     (["history", "bob"], 0), (["send", "--message-id", "ab", "bob", "x"], 0)):
        assert launch._with_message_id(argv, at) == argv


def test_no_daemon_means_no_connection(tmp_path: Path) -> None:
    assert launch.connect(tmp_path) is None
    (tmp_path / launch.SOCKET_NAME).write_text("")  # a file nobody listens on
    assert launch.connect(tmp_path) is None


@pytest.mark.parametrize(("argv", "local"), [
    (["init", "--handle", "a"], True), ([], True), (["chat"], True), (["daemon"], True),
    (["gift", "bob", "1"], True), (["gift", "--yes", "bob", "1"], False),
    (["wallet", "import", "--keystore", "k"], True), (["wallet", "list"], False),
    (["send", "bob", "hi"], False), (["--json", "history", "bob"], False),
])
def test_what_runs_in_the_callers_process(argv: list[str], local: bool) -> None:
    name, at = launch.command_of(argv)
    assert launch.runs_here(argv, name, at) is local
