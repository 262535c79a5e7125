"""The command line: bad settings give one line on stderr and exit 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenchat.relay.cli import app


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stderr if hasattr(result, "stderr") else result.output


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "99999"], None, "error: invalid --port: must be between 0 and 65535"),
        (["--sync", "maybe"], None, "error: invalid --sync: must be one of full, normal"),
        ([], {"TENCHAT_RELAY_MAX_FRAME": "big"}, "error: invalid TENCHAT_RELAY_MAX_FRAME"),
    ],
)
def test_bad_config_is_one_line(args: list[str], env: dict[str, str] | None, message: str) -> None:
    code, err = run("serve", *args, env=env)
    assert code == 1
    assert err.strip().startswith(message) and err.strip().count("\n") == 0, err


def test_unknown_toml_key(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text("colour = 'blue'\n")
    code, err = run("serve", "--config", str(tmp_path / "r.toml"))
    path = tmp_path / "r.toml"
    assert code == 1 and err.strip() == f"error: config file {path}: unknown key(s): colour"


@pytest.mark.slow
def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "tenchat.relay", "serve", "--port", str(port),
             "--data", str(tmp_path / "d"), "--log-level", "error"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot start the relay"), proc.stderr
    assert "Traceback" not in proc.stderr
