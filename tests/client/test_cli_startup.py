"""`tenchat` builds only the part holding the invoked command before typer parses
(start-up time), and its view of the global options stays in step with the real ones."""

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


def test_a_scripted_call_builds_only_the_part_holding_its_command() -> None:
    """`tenchat send` builds the messaging commands, not the ~60 others (typer turns every
    signature into a click command before parsing); help and a typo get them all."""
    send = typer.main.get_command(cli.build_app("send"))
    assert "send" in send.commands and "follow" not in send.commands  # type: ignore[attr-defined]
    poll = typer.main.get_command(cli.build_app("poll"))
    assert set(poll.commands) == {"poll", "sticker"}  # type: ignore[attr-defined]
    everything = typer.main.get_command(cli.build_app(None))
    assert {"send", "follow", "group", "wallet", "story"} <= set(everything.commands)  # type: ignore[attr-defined]
    assert set(typer.main.get_command(cli.build_app("sned")).commands) == set(  # type: ignore[attr-defined]
        everything.commands)  # type: ignore[attr-defined]


def test_the_command_modules_never_import_the_root() -> None:
    """Each part owns its Typer and the root adds it (no part attaches itself to the
    root's app): a part imports the shared helpers (client/cli_common.py), not client/cli.py."""
    import ast
    from pathlib import Path

    client = Path(cli.__file__).parent
    for path in [*client.glob("cli_*.py"), client / "wallet" / "cli.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.module != "cli", f"{path.name} imports client/cli.py"
