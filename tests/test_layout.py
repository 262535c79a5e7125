"""The repository layout holds: common is pure, client and relay never import each other,
heavy UI and chain libraries stay in their corners (docs/design.md, "Parts")."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("common", "relay", "client")


def imports_of(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved)."""
    part = path.relative_to(ROOT).parts
    package = ["tenchat", *part[:-1]]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                found.add(node.module)
    return found


def files(part: str) -> list[Path]:
    return sorted((ROOT / part).rglob("*.py"))


@pytest.mark.parametrize(
    ("part", "forbidden"),
    [
        ("common", ("tenchat.client", "tenchat.relay", "socket", "sqlite3", "aiosqlite",
                    "websockets", "asyncio", "textual", "web3")),
        ("relay", ("tenchat.client", "textual", "web3", "eth_account")),
        ("client", ("tenchat.relay",)),
    ],
)
def test_part_imports(part: str, forbidden: tuple[str, ...]) -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files(part)
        for name in imports_of(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]
    assert not bad, bad


def test_textual_and_web3_stay_in_their_corners() -> None:
    bad = []
    for path in files("client"):
        rel = path.relative_to(ROOT).as_posix()
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "textual" and not rel.startswith("client/tui/"):
                bad.append(f"{rel} imports textual")
            if top in ("web3", "eth_account") and not rel.startswith("client/wallet"):
                bad.append(f"{rel} imports {top}")
    assert not bad, bad


def test_relay_sql_stays_in_its_storage_package() -> None:
    """The relay reaches its database only through relay/storage (the Store interface):
    no other relay module imports a database driver."""
    drivers = ("sqlite3", "aiosqlite", "asyncpg", "psycopg")
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files("relay")
        if not path.relative_to(ROOT).as_posix().startswith("relay/storage/")
        for name in imports_of(path)
        if name.split(".")[0] in drivers
    ]
    assert not bad, bad


def test_no_bare_top_level_packages_installed() -> None:
    code = (
        "import importlib.util, sys\n"
        "sys.path = [p for p in sys.path if p not in ('', '.')]\n"
        "print([m for m in ('client', 'relay', 'common') if importlib.util.find_spec(m)])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_client_core_does_not_load_textual_or_relay() -> None:
    code = (
        "import sys, tenchat.client.service, tenchat.client.cli\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'web3')"
        " or m.startswith('tenchat.relay')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_tenchat_send_does_not_load_web3(cli) -> None:  # type: ignore[no-untyped-def]
    """A real `tenchat send` (client core, relay, crypto) runs without web3 or eth-account:
    they cost about a second to import and only wallet commands need them."""
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    code = (
        "import atexit, sys\n"
        "def report():\n"
        "    bad = sorted(m for m in sys.modules if m.split('.')[0] in ('web3', 'eth_account'))\n"
        "    sys.__stderr__.write(f'LOADED {bad}\\n')\n"
        "atexit.register(report)\n"
        "sys.argv = ['tenchat', '--home', sys.argv[1], 'send', 'bob', 'hello']\n"
        "from tenchat.client.cli import main\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(cli.home("alice"))],
                         capture_output=True, text=True, env=cli.env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stderr
