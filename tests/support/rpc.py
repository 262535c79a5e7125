"""A blocking JSON-RPC client of a home's daemon socket, and a daemon process for tests.

Plain sockets and json, like a script would use (docs/rpc.md): one JSON value a line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tenchat.client.launch import connect, socket_path

__all__ = ["RpcClient", "RpcFailure", "start_daemon", "stop_daemon"]


class RpcFailure(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error
        self.code = error["code"]
        self.data = error.get("data")


class RpcClient:
    """``call(method, **params)`` waits for its answer; notifications meanwhile are kept
    in ``notifications`` (``next_notification`` waits for one)."""

    def __init__(self, home: Path, *, timeout: float = 60) -> None:
        sock = connect(home)
        if sock is None:
            raise ConnectionError(f"no daemon serves {home}")
        self.sock = sock
        self.sock.settimeout(timeout)
        self.reader = sock.makefile("rb")
        self.notifications: list[dict[str, Any]] = []
        self.next_id = 0

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> Any:
        line = self.reader.readline()
        if not line:
            raise ConnectionError("the daemon closed the connection")
        return json.loads(line)

    def answer(self, req_id: Any) -> dict[str, Any]:
        while True:
            msg = self.read()
            if isinstance(msg, dict) and "method" in msg and "id" not in msg:
                self.notifications.append(msg)
                continue
            if isinstance(msg, list) or msg.get("id") == req_id:
                return msg  # type: ignore[no-any-return]

    def call(self, method: str, **params: Any) -> Any:
        self.next_id += 1
        req_id = self.next_id
        self.send_raw(json.dumps({"jsonrpc": "2.0", "id": req_id, "method": method,
                                  "params": params}).encode() + b"\n")
        msg = self.answer(req_id)
        if "error" in msg:
            raise RpcFailure(msg["error"])
        return msg["result"]

    def next_notification(self, method: str, *, match: Any = None,
                          timeout: float = 30) -> dict[str, Any]:
        """The next notification ``method`` whose params satisfy ``match`` (in order)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, msg in enumerate(self.notifications):
                if msg["method"] == method and (match is None or match(msg["params"])):
                    del self.notifications[:i + 1]
                    return msg["params"]  # type: ignore[no-any-return]
            self.notifications.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} notification")
            self.sock.settimeout(left)
            msg = self.read()
            if "method" in msg and "id" not in msg:
                self.notifications.append(msg)


def start_daemon(home: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``tenchat --home HOME daemon``, once its socket answers."""
    proc = subprocess.Popen([sys.executable, "-m", "tenchat.client", "--home", str(home),
                             "daemon"], env=env, stdout=subprocess.DEVNULL,
                            stderr=log.open("ab"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited {proc.returncode}: {log.read_text()}")
        sock = connect(home) if socket_path(home).exists() else None
        if sock is not None:
            sock.close()
            return proc
        time.sleep(0.02)
    proc.kill()
    raise TimeoutError("the daemon did not start")


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
