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


def runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of this repository ``path`` imports when it runs — at the top or inside a
    function. ``from pkg import name`` counts the module ``pkg.name`` if there is one, else
    ``pkg``. Imports under ``if TYPE_CHECKING:`` are left out: annotations only."""
    package = ["tenchat", *path.relative_to(ROOT).parts[:-1]]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, ast.ImportFrom) and child.level:
                base = package[: len(package) - child.level + 1]
                module = ".".join(base + ([child.module] if child.module else []))
                for alias in child.names:
                    sub = f"{module}.{alias.name}"
                    found.add(sub if sub in modules else module)
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def module_name(path: Path) -> str:
    parts = ["tenchat", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_cycles(part: str) -> list[set[str]]:
    """The strongly connected groups of more than one module in ``part``'s import graph
    (Tarjan), each a set of modules that import each other, directly or around."""
    modules = {module_name(p): p for p in files(part)}
    graph = {m: {d for d in runtime_imports(p, set(modules)) if d in modules and d != m}
             for m, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[set[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(group)

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return cycles


def test_no_import_cycle_inside_the_client() -> None:
    """The core never imports a feature, the CLI's parts never import its root, and the
    TUI's screens never import each other around: the client's runtime imports (top
    level and inside functions, client/tui included) form no cycle."""
    assert import_cycles("client") == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself: two modules importing each other (one inside a function) are
    found; an import under TYPE_CHECKING is not a cycle."""
    pkg = ROOT / "client"
    fake = {pkg / "a.py": "from . import b\n",
            pkg / "b.py": "def f():\n    from .a import x\n",
            pkg / "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                          "    from .a import x\n"}
    real_files, real_read = files, Path.read_text
    monkeypatch.setattr(sys.modules[__name__], "files", lambda part: sorted(fake))
    monkeypatch.setattr(Path, "read_text",
                        lambda self, *a, **k: fake[self] if self in fake else real_read(self))
    cycles = import_cycles("client")
    assert cycles == [{"tenchat.client.a", "tenchat.client.b"}]
    assert real_files("client")  # (the real check reads the real tree)
