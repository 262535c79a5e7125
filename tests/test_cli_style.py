"""Both programs print their version, and their help and usage errors in one plain style
(issue 21, item 6): no boxes drawn by rich, the same `Usage:` / `Error:` layout."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

PROGRAMS = ("tenchat", "tenchat-relay")  # the installed console scripts
BOX = set("╭╮╰╯│─┌┐└┘")


def run(program: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENCHAT_")}
    env["COLUMNS"] = "100"
    env["FORCE_COLOR"] = "1"  # rich would draw its boxes and colours even so
    script = Path(sys.executable).parent / program
    return subprocess.run([str(script), *args],
                          capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_version(program: str) -> None:
    res = run(program, "--version")
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"{program} {version('tenchat')}\n"
    assert res.stderr == ""


@pytest.mark.parametrize(("program", "args"), [
    ("tenchat", ["--help"]),
    ("tenchat", ["wallet", "--help"]),
    ("tenchat", ["relay", "trust", "--help"]),
    ("tenchat-relay", ["--help"]),
    ("tenchat-relay", ["serve", "--help"]),
    ("tenchat-relay", ["admin", "--help"]),
])
def test_help_is_plain(program: str, args: list[str]) -> None:
    res = run(program, *args)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"Usage: {program} ")
    assert not BOX & set(res.stdout), res.stdout
    assert "\x1b[" not in res.stdout  # no colour codes either
    assert "\n  --help" in res.stdout  # click's plain option list


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_usage_errors_are_plain_and_exit_2(program: str) -> None:
    res = run(program, "no-such-command")
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.startswith(f"Usage: {program} ")
    assert "Error: No such command 'no-such-command'." in res.stderr
    assert not BOX & set(res.stderr), res.stderr
