"""The documentation stays true and inside the repository: README.md stays a page, no
tracked file points outside the checkout, every Markdown link reaches a file (and an
anchor) that exists, and docs/cli.md agrees with every command's ``--help``."""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.support.cli_inventory import CLI_DOC, commands, doc_sections

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 220

# What would point outside the checkout: the folder beside it where the design notes were
# kept before docs/design.md. Spelled in two pieces so that this file does not match itself.
OUTSIDE = ("../" + "shared", "shared/" + "DESIGN.md", "shared/" + "STYLE.md")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def text_of(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def markdown_files() -> list[Path]:
    return [p for p in tracked_files() if p.suffix == ".md" and p.exists()]


# --- README and references ---------------------------------------------------------------


def test_readme_stays_a_page() -> None:
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail into docs/")


def test_readme_keeps_the_test_command_ci_runs() -> None:
    # .ci/run runs this line verbatim; README tells newcomers the same command.
    command = ("python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' "
               "&& .venv/bin/python -m pytest")
    assert command in (ROOT / "README.md").read_text()
    assert command in (ROOT / ".ci" / "run").read_text()


def test_no_tracked_file_refers_outside_the_repository() -> None:
    bad = []
    for path in tracked_files():
        text = text_of(path)
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if any(marker in line for marker in OUTSIDE):
                bad.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not bad, "\n".join(bad)


# --- Markdown links ------------------------------------------------------------------------

_FENCE = re.compile(r"^(```|~~~)")
_INLINE_CODE = re.compile(r"`[^`]*`")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, with inline code removed."""
    out, in_fence = [], False
    for n, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line.lstrip()):
            in_fence = not in_fence
            continue
        if not in_fence:
            out.append((n, _INLINE_CODE.sub("", line)))
    return out


def links(text: str) -> list[tuple[int, str]]:
    found = []
    for n, line in prose_lines(text):
        found += [(n, m.group(1)) for m in _LINK.finditer(line)]
        m = _REF_DEF.match(line)
        if m:
            found.append((n, m.group(1)))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"<[^>]+>", "", heading.strip())
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = text.lower()
    kept = []
    for ch in text:
        if ch in " -_" or ch.isalnum() or unicodedata.category(ch).startswith("M"):
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line.lstrip()):
            in_fence = not in_fence
            continue
        m = None if in_fence else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", line))
    return found


def test_slug_matches_githubs_anchors() -> None:
    assert slug("Security model") == "security-model"
    assert slug("`tenchat group create`") == "tenchat-group-create"
    assert slug("Wallets, gifts, NFTs") == "wallets-gifts-nfts"
    assert slug("6B. Social records") == "6b-social-records"
    assert slug("TLS") == "tls"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_every_markdown_link_reaches_a_file_and_anchor_in_the_repository() -> None:
    bad = []
    for path in markdown_files():
        text = path.read_text()
        for n, target in links(text):
            where = f"{path.relative_to(ROOT)}:{n}: {target}"
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, tenchat:
                continue
            file_part, _, fragment = target.partition("#")
            dest = (path.parent / unquote(file_part)).resolve() if file_part else path
            try:
                dest.relative_to(ROOT)
            except ValueError:
                bad.append(f"{where} (outside the repository)")
                continue
            if not dest.exists():
                bad.append(f"{where} (no such file)")
                continue
            if fragment and dest.suffix == ".md" and fragment not in anchors(dest.read_text()):
                bad.append(f"{where} (no heading #{fragment} in {dest.relative_to(ROOT)})")
    assert not bad, "\n".join(bad)


def test_the_link_check_sees_a_broken_link() -> None:
    text = "see [x](missing.md) and [y](#nowhere) but not `[z](code.md)`\n```\n[w](f.md)\n```"
    assert [t for _, t in links(text)] == ["missing.md", "#nowhere"]


# --- docs/cli.md against --help -------------------------------------------------------------


def test_cli_doc_has_every_command_and_no_other() -> None:
    documented = doc_sections()
    known = {c.path for c in commands()}
    missing = sorted(known - set(documented))
    extra = sorted(set(documented) - known)
    assert not missing, (f"docs/cli.md lacks {missing}; `python -m tests.support.cli_inventory`"
                         " prints a section to start from")
    assert not extra, f"docs/cli.md documents commands that do not exist: {extra}"


def test_cli_doc_usage_and_options_match_help() -> None:
    documented = doc_sections()
    bad = []
    for cmd in commands():
        section = documented.get(cmd.path)
        if section is None:
            continue  # reported by the test above
        if section.usage != cmd.usage:
            bad.append(f"{cmd.path}: usage in docs/cli.md is {section.usage!r}, "
                       f"--help says {cmd.usage!r}")
        spellings = {name: opt.names for name, opt in cmd.options.items()}
        for name, names in spellings.items():
            if not (section.options & {name, *names}):
                bad.append(f"{cmd.path}: option {name} is not in docs/cli.md")
        every = {n for name, names in spellings.items() for n in (name, *names)}
        for doc_name in sorted(section.options - every):
            bad.append(f"{cmd.path}: docs/cli.md lists {doc_name}, which --help does not have")
    assert not bad, "\n".join(bad)


def test_cli_doc_parser_reads_a_section() -> None:
    text = ("### `tenchat group create`\n\n`tenchat group create [OPTIONS] NAME [MEMBERS]...`\n\n"
            "| option | |\n| --- | --- |\n| `--announce` | Only admins may post. |\n"
            "| `--private/--public` | x |\n\n### Not a command\n| `--ignored` | |\n")
    sections = doc_sections(text)
    assert list(sections) == ["tenchat group create"]
    s = sections["tenchat group create"]
    assert s.usage == "tenchat group create [OPTIONS] NAME [MEMBERS]..."
    assert s.options == {"--announce", "--private/--public"}
    assert CLI_DOC.exists()
