"""`tenchat` registers only the invoked command before typer parses (start-up time), and
its view of the global options stays in step with the real ones."""

from __future__ import annotations

import typer.main

from tenchat.client import cli


def test_value_options_match_the_global_options() -> None:
    group = typer.main.get_command(cli.app)
    taking_values = {opt for p in group.params if not getattr(p, "is_flag", False)
                     for opt in p.opts if opt.startswith("--")}
    assert taking_values == cli.VALUE_OPTIONS


def test_invoked_command_skips_global_options() -> None:
    assert cli.invoked_command(["--home", "send", "send", "bob", "hi"]) == "send"
    assert cli.invoked_command(["--json", "--relay", "ws://x", "group", "list"]) == "group"
    assert cli.invoked_command(["--passphrase-file", "p", "inbox"]) == "inbox"
    assert cli.invoked_command(["--home=h", "whoami"]) == "whoami"
    assert cli.invoked_command(["--help", "send"]) is None  # help lists every command
    assert cli.invoked_command(["--home", "h"]) is None
    assert cli.invoked_command([]) is None
