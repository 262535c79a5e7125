"""The coverage table of docs/development.md, from a coverage JSON report.

    .venv/bin/python -m coverage json -q -o coverage.json
    .venv/bin/python -m tests.support.coverage_table coverage.json [--modules]

One row per part (the packages, and the relay and client *cores* the targets of
docs/development.md are set for); ``--modules`` adds one row per module of the cores
and of ``common/``, least covered branches first, to show where the gaps are.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

RELAY_CORE = ("store", "hub", "session", "handlers", "server", "limits", "connection")
CLIENT_CORE = ("service", "cache", "connection")


def _in(package: str) -> Callable[[str], bool]:
    return lambda path: path.startswith(package + "/")


def _core(package: str, modules: Iterable[str]) -> Callable[[str], bool]:
    """A package's core modules; a module split into a package of the same name (e.g.
    relay/store.py into relay/storage/) counts with them."""
    names = set(modules)

    def match(path: str) -> bool:
        parts = PurePosixPath(path).parts
        if len(parts) < 2 or parts[0] != package:
            return False
        return PurePosixPath(parts[1]).stem in names or parts[1] == "storage" and "store" in names

    return match


PARTS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("common", _in("common")),
    ("relay", _in("relay")),
    ("relay core", _core("relay", RELAY_CORE)),
    ("client", _in("client")),
    ("client core", _core("client", CLIENT_CORE)),
    ("client/tui", _in("client/tui")),
    ("client/wallet", _in("client/wallet")),
    ("all", lambda path: True),
)


@dataclass
class Tally:
    statements: int = 0
    covered: int = 0
    branches: int = 0
    branches_covered: int = 0

    def add(self, summary: dict[str, int]) -> None:
        self.statements += summary["num_statements"]
        self.covered += summary["covered_lines"]
        self.branches += summary["num_branches"]
        self.branches_covered += summary["covered_branches"]

    @staticmethod
    def _pct(part: int, whole: int) -> str:
        return f"{100 * part / whole:.0f} %" if whole else "–"

    def row(self, name: str) -> str:
        both = self._pct(self.covered + self.branches_covered, self.statements + self.branches)
        return (f"| {name} | {self.statements} | {self._pct(self.covered, self.statements)} "
                f"| {self.branches} | {self._pct(self.branches_covered, self.branches)} "
                f"| {both} |")


HEADER = ("| part | statements | lines | branches | branches covered | lines + branches |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: |")


def table(files: dict[str, dict[str, int]], modules: bool = False) -> str:
    rows = [HEADER]
    for name, match in PARTS:
        tally = Tally()
        for path, summary in files.items():
            if match(path):
                tally.add(summary)
        rows.append(tally.row(name))
    if modules:
        core = [m for name, m in PARTS if name in ("common", "relay core", "client core")]
        picked = {p: s for p, s in files.items() if any(m(p) for m in core)}
        rows += ["", HEADER.replace("| part |", "| module |")]
        for path, summary in sorted(picked.items(), key=lambda item: (
                item[1]["covered_branches"] - item[1]["num_branches"])):
            tally = Tally()
            tally.add(summary)
            rows.append(tally.row(path))
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="coverage JSON (coverage json -o ...)")
    parser.add_argument("--modules", action="store_true", help="a row per core module too")
    args = parser.parse_args()
    with open(args.report) as f:
        report = json.load(f)
    files = {path: data["summary"] for path, data in report["files"].items()}
    print(table(files, args.modules))


if __name__ == "__main__":
    main()
