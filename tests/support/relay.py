"""Start a real ``tenchat-relay`` process on loopback for a test.

    with RelayProcess(tmp_path / "relay") as relay:
        ...  # relay.url, relay.port, relay.data_dir
        relay.terminate()        # SIGTERM, wait; returns the exit status
        relay.restart()          # same data dir, same port
        relay.kill()             # SIGKILL

The harness is the benchmarks' (bench/_relay.py): one way to start, wait for, stop, kill
and restart a relay process and read its log, for both. (bench never imports tests.)
"""

from __future__ import annotations

from bench._relay import RelayProcess, RelayStartError, compile_bytecode

__all__ = ["RelayProcess", "RelayStartError", "compile_bytecode"]
