"""Relay nodes of one relay for cluster tests: ``tenchat-relay serve`` processes on one
store (PostgreSQL) and one bus (NATS), each with its /healthz endpoint."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.support.relay import RelayProcess
from tests.support.services import free_port

__all__ = ["Nodes"]


class Nodes:
    """Three relay nodes of one relay (one name: one bus subject) on one store and bus."""

    def __init__(self, tmp_path: Path, storage: str, bus: str, n: int = 3,
                 args: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        self.name = f"faults-{uuid.uuid4().hex[:8]}"  # tests at once share a NATS server
        self.health_ports = [free_port() for _ in range(n)]
        self.relays = [
            RelayProcess(tmp_path / f"node{i}", name=self.name,
                         args=["--storage", storage, "--bus", bus,
                               "--metrics-port", str(self.health_ports[i]), *args],
                         env=env)
            for i in range(n)
        ]

    def start(self) -> None:
        for relay in self.relays:  # one after the other: the first migrates the schema
            relay.start()

    def stop(self) -> None:
        for relay in self.relays:
            if relay.running:
                relay.terminate()

    @property
    def urls(self) -> list[str]:
        return [relay.url for relay in self.relays]

    def healthz(self, i: int) -> tuple[int, dict[str, object]]:
        url = f"http://127.0.0.1:{self.health_ports[i]}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def metric(self, i: int, name: str) -> float:
        """A sample of node ``i``'s /metrics (``name`` with its labels, as exposed); 0 if
        absent, or if the node is not running."""
        if not self.relays[i].running:
            return 0.0
        url = f"http://127.0.0.1:{self.health_ports[i]}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.rsplit(" ", 1)[1])
        return 0.0

    async def health(self) -> list[tuple[int, dict[str, object]]]:
        return [await asyncio.to_thread(self.healthz, i) for i in range(len(self.relays))]

    async def health_until(self, check: Callable[[dict[str, object]], bool],
                           timeout: float = 15.0) -> None:
        """Poll every node's /healthz until ``check`` holds for each body."""
        async with asyncio.timeout(timeout):
            while not all(check(body) for _, body in await self.health()):
                await asyncio.sleep(0.1)
