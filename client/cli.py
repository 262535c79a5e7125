"""`tenchat`: the scripted command line. Thin: parse, call the client core, print.

Exit codes: 0 success, 2 usage error (typer), 1 anything else with exactly one
line ``error: ...`` on stderr — never a traceback (set TENCHAT_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import (
    cli_account,
    cli_daemon,
    cli_devices,
    cli_groups,
    cli_messages,
    cli_polls,
    cli_relay,
    cli_social,
    cli_stories,
    hosting,
)
from .cli_common import DEFAULT_RELAY, Options, default_home, open_tui
from .cli_common import describe as describe  # (for tests and scripts, as before)
from .cli_common import line_of as line_of
from .cli_common import run as run
from .wallet import cli as cli_wallet

__all__ = ["app", "build_app", "main", "invoked_command", "VALUE_OPTIONS"]

# Each command module's own Typer, added to the root by build_app: account (init, whoami,
# contacts, settings…), messages (send, inbox, history…), groups, polls and stickers,
# social (profile, follow, post…), stories, relay, wallet, daemon.
PARTS: tuple[typer.Typer, ...] = (
    cli_account.app, cli_messages.app, cli_groups.app, cli_polls.app, cli_social.app,
    cli_stories.app, cli_relay.app, cli_wallet.app, cli_daemon.app, cli_devices.app)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"tenchat {version('tenchat')}")
        raise typer.Exit()


def main_options(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(
        "--home", envvar="TENCHAT_HOME", help="Folder of the identity and its cache.",
        show_default="the platform's user data dir")] = None,
    relay: Annotated[str | None, typer.Option(
        "--relay", envvar="TENCHAT_RELAY",
        help="Relay URL, or several of one relay, comma-separated (failover) "
             f"[default: the identity's relay, else {DEFAULT_RELAY}]")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    passphrase_file: Annotated[Path | None, typer.Option(
        "--passphrase-file", help="Read the passphrase from this file (first line).")] = None,
    show_version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_version,
        help="Print the version and exit.")] = False,
) -> None:
    ctx.obj = Options(home or default_home(), relay, json_out, passphrase_file)
    if level := os.environ.get("TENCHAT_LOG"):  # e.g. TENCHAT_LOG=info: diagnostics on stderr
        import logging

        logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s: %(message)s")
        logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    if ctx.invoked_subcommand is None:
        open_tui(ctx.obj)



def _names(part: typer.Typer) -> set[str]:
    """The commands and command groups ``part`` adds to the root."""
    commands = {c.name or c.callback.__name__.replace("_", "-")  # type: ignore[union-attr]
                for c in part.registered_commands}
    return commands | {g.name for g in part.registered_groups if g.name}


def build_app(command: str | None = None) -> typer.Typer:
    """The `tenchat` command: the global options, then the parts — only the one holding
    ``command`` if it is given and known. typer builds a click command from every
    function's signature before it parses (~0.15 s for all of them); a scripted call
    needs only its own part."""
    root = typer.Typer(
        name="tenchat",
        help="End-to-end encrypted chat for the terminal.",
        no_args_is_help=False,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    root.callback(invoke_without_command=True)(main_options)
    wanted = [p for p in PARTS if command in _names(p)] if command else []
    for part in wanted or PARTS:  # help, or a mistyped name: all of them
        root.add_typer(part)
    return root


app = build_app()  # every command (help, the CLI inventory)
hosting.app_factory = build_app  # the daemon (and the TUI) run any command for a caller

# main_options' options that take a value (tests/client/test_cli_startup.py keeps this
# in step): skipped when main() looks for the command in the arguments.
VALUE_OPTIONS = frozenset({"--home", "--relay", "--passphrase-file"})


def invoked_command(argv: list[str]) -> str | None:
    """The command (or command group) name in ``argv``, after the global options; None
    if there is none, or help was asked for before it."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--help", "-h"):
            return None
        if arg == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if arg.startswith("-"):
            i += 2 if arg in VALUE_OPTIONS else 1
            continue
        return arg
    return None


def main() -> None:
    build_app(invoked_command(sys.argv[1:]))()


if __name__ == "__main__":
    main()
