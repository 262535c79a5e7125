"""One relay process per data directory: a second one refuses to start (before this lock
it started, and every write through it failed with `internal`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


def test_a_second_relay_on_the_same_data_directory_refuses_to_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    serve = [sys.executable, "-m", "tenchat.relay", "serve", "--port", "0", "--data", str(data)]
    with RelayProcess(data) as first:
        second = subprocess.run(serve, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1, second
        assert second.stderr.strip().splitlines()[-1] == (
            f"error: cannot start the relay: another relay process is serving {data}: relay "
            "processes cannot share a data directory (several relay nodes share a store and "
            "a bus instead; docs/operations.md)")
        assert first.running
        first.kill()  # SIGKILL: the kernel drops the lock with the process
    with RelayProcess(data) as again:
        assert again.running
