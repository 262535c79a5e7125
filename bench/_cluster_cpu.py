"""CPU accounting for the cluster benchmark: every part of a relay cluster, from /proc.

The parts: the relay node processes, the PostgreSQL backends serving the benchmark's
scratch database (found by its name in their process title), the PostgreSQL server's
own processes that work for every database (WAL writer, checkpointer, background
writer, autovacuum: shared with anything else using the server), and the bus (the
benchmark's private ``nats-server``). The load generators count their own CPU.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from ._relay import ProcCpu, _stat_cpu, machine_busy

__all__ = ["PartsCpu", "PartsSample", "pid_cpu"]

# Process titles of PostgreSQL's shared workers ("postgres: 15/main: walwriter").
_PG_SERVER_TITLES = ("walwriter", "checkpointer", "background writer", "autovacuum",
                     "logical replication", "stats")


@dataclass(frozen=True)
class PartsSample:
    relay: float  # CPU seconds so far of every relay node (all threads)
    pg_backends: float  # ... of the backends serving the scratch database
    pg_server: float  # ... of the server's shared workers
    bus: float  # ... of the nats-server
    busy: tuple[int, int]  # the machine's (busy, total) jiffies


def pid_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of process ``pid`` so far; 0 if gone."""
    try:
        return _stat_cpu(Path(f"/proc/{pid}/stat"))
    except (OSError, ValueError, IndexError):
        return 0.0


class PartsCpu:
    """Samples the CPU of a cluster's parts; ``database`` None: no PostgreSQL."""

    def __init__(self, relay_pids: list[int], database: str | None, bus_pid: int | None) -> None:
        self.relays = [ProcCpu(pid) for pid in relay_pids]
        self.database = database
        self.bus_pid = bus_pid

    def sample(self) -> PartsSample:
        relay = sum(r.sample().total for r in self.relays)
        backends = server = 0.0
        if self.database is not None:
            backends, server = self._postgres()
        bus = pid_cpu(self.bus_pid) if self.bus_pid else 0.0
        return PartsSample(relay, backends, server, bus, machine_busy())

    def _postgres(self) -> tuple[float, float]:
        backends = server = 0.0
        needle = f" {self.database} "
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                if (proc / "comm").read_text().strip() != "postgres":
                    continue
                title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if needle in title:
                    backends += _stat_cpu(proc / "stat")
                elif any(t in title for t in _PG_SERVER_TITLES):
                    server += _stat_cpu(proc / "stat")
        return backends, server

    @staticmethod
    def diff(a: PartsSample, b: PartsSample) -> dict[str, float]:
        """CPU seconds of each part between two samples, and the machine's busy share."""
        busy = (b.busy[0] - a.busy[0]) / max(1, b.busy[1] - a.busy[1])
        return {
            "relay": b.relay - a.relay,
            "pg_backends": b.pg_backends - a.pg_backends,
            "pg_server": b.pg_server - a.pg_server,
            "bus": b.bus - a.bus,
            "machine_busy_pct": 100 * busy,
        }
