"""The built wheel holds every module of the three parts, under `tenchat.`, and nothing bare."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contains_every_module(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("tenchat-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "tenchat/" + path.relative_to(ROOT).as_posix()
        for part in ("common", "relay", "client")
        for path in (ROOT / part).rglob("*.py")
    }
    missing = sorted(expected - names)
    assert not missing, missing
    bare = sorted(n for n in names if n.split("/")[0] in ("common", "relay", "client", "tests"))
    assert not bare, bare
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "tenchat = tenchat.client.launch:main" in text  # through the daemon, else the CLI
    assert "tenchat-relay = tenchat.relay.cli:main" in text
