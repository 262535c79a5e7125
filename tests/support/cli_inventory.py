"""Every command of `tenchat` and `tenchat-relay`, read from their typer apps, and the
sections of docs/cli.md that document them.

``python -m tests.support.cli_inventory`` prints a skeleton section (usage line and
option table) for each command that docs/cli.md lacks; tests/test_docs.py checks that the
page and the ``--help`` texts agree on the commands, their arguments and their options.

A command's section in docs/cli.md starts with a heading ``### `tenchat group create` ``;
its first code span starting with the program name is the usage line (as ``--help``
prints it after "Usage:"), and its option table's rows start with ``| `--option``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = ROOT / "docs" / "cli.md"

__all__ = ["Command", "commands", "doc_sections", "skeleton"]


@dataclass(frozen=True)
class Command:
    path: str  # "tenchat group create"
    usage: str  # "tenchat group create [OPTIONS] NAME [HANDLES]..."
    summary: str  # the first paragraph of its help
    options: dict[str, Option]  # by its first long name ("--private/--public" as one)
    is_group: bool


def _apps() -> list[tuple[str, typer.Typer]]:
    from tenchat.client.cli import app as client_app
    from tenchat.relay.cli import app as relay_app

    return [("tenchat", client_app), ("tenchat-relay", relay_app)]


@dataclass(frozen=True)
class Option:
    names: tuple[str, ...]  # every spelling: ("-o", "--output"), ("--private/--public",)
    help: str
    takes_value: bool


def _option(opt: Any) -> tuple[str, Option]:
    longs = [o for o in opt.opts if o.startswith("--")] or list(opt.opts)
    name = longs[0]
    names = tuple(opt.opts)
    if opt.secondary_opts:
        name += "/" + opt.secondary_opts[0]
        names = (name,)
    return name, Option(names, (opt.help or "").strip(), not opt.is_flag)


def plain_usage(usage: str) -> str:
    """typer's usage line with its argument names as docs write them:
    ``{post_id}`` → ``POST_ID``, ``[members]...`` → ``[MEMBERS]...``."""
    usage = re.sub(r"\{([a-z0-9_]+)\}", lambda m: m.group(1).upper(), usage)
    return re.sub(r"\[([a-z0-9_]+)\]", lambda m: "[" + m.group(1).upper() + "]", usage)


def _walk(cmd: Any, path: list[str]) -> Iterator[Command]:
    ctx = cmd.context_class(cmd, info_name=" ".join(path))
    options = dict(
        _option(p) for p in cmd.params if p.param_type_name == "option" and "--help" not in p.opts
    )
    usage = plain_usage(" ".join([" ".join(path), *cmd.collect_usage_pieces(ctx)]))
    is_group = hasattr(cmd, "commands")
    summary = " ".join((cmd.help or "").strip().split("\n\n")[0].split())
    yield Command(" ".join(path), usage, summary, options, is_group)
    if is_group:
        for name, sub in sorted(cmd.commands.items()):
            yield from _walk(sub, [*path, name])


def commands() -> list[Command]:
    """Every command and command group, the programs themselves first."""
    found: list[Command] = []
    for prog, app in _apps():
        found.extend(_walk(typer.main.get_command(app), [prog]))
    return found


_HEADING = re.compile(r"^#{2,4} `((?:tenchat|tenchat-relay)(?: [a-z][a-z0-9-]*)*)`\s*$")
_OPTION_ROW = re.compile(r"^\| `(--?[a-zA-Z0-9][a-zA-Z0-9-]*(?:/--?[a-zA-Z0-9][a-zA-Z0-9-]*)?)")


@dataclass(frozen=True)
class DocSection:
    path: str
    usage: str | None
    options: set[str]


def doc_sections(text: str | None = None) -> dict[str, DocSection]:
    """The command sections of docs/cli.md by command path."""
    if text is None:
        text = CLI_DOC.read_text()
    sections: dict[str, DocSection] = {}
    current: str | None = None
    usage: str | None = None
    options: set[str] = set()
    in_fence = False

    def close() -> None:
        if current is not None:
            sections[current] = DocSection(current, usage, set(options))

    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if line.startswith("#"):
            close()
            m = _HEADING.match(line)
            current, usage, options = (m.group(1) if m else None), None, set()
            continue
        if current is None:
            continue
        if usage is None:
            m = re.search(r"`((?:tenchat|tenchat-relay) [^`]*|(?:tenchat|tenchat-relay))`", line)
            if m and m.group(1).startswith(current):
                usage = m.group(1)
        m = _OPTION_ROW.match(line)
        if m:
            options.add(m.group(1))
    close()
    return sections


def skeleton(cmd: Command) -> str:
    lines = [f"### `{cmd.path}`", "", f"`{cmd.usage}`", ""]
    if cmd.summary:
        lines += [cmd.summary, ""]
    if cmd.options:
        lines += ["| option | |", "| --- | --- |"]
        for name, opt in cmd.options.items():
            value = " " + name.lstrip("-").upper().replace("-", "_") if opt.takes_value else ""
            lines.append(f"| `{name}{value}` | {opt.help} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    documented = doc_sections() if CLI_DOC.exists() else {}
    everything = "--all" in sys.argv[1:]
    for cmd in commands():
        if everything or cmd.path not in documented:
            print(skeleton(cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
