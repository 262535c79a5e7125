"""A model of a relay cluster's throughput against nodes and cores, fitted to the
cluster benchmark's measured 1 → 2 → 3 node points and their CPU split.

Each part costs CPU-seconds per message:

- the relay nodes together: ``r(n) = r1 + s·(n − 1)``. Every node hears every other
  node's events on the bus (one subject per relay) and decodes them, whether or not a
  recipient is connected to it, so each extra node adds ``s`` per message;
- the bus (nats-server): ``q(n) = q1 + u·(n − 1)``, as it copies each event to every
  other node;
- PostgreSQL (its backends and shared workers): ``p``, the same at any node count.

With one core per relay node (a node is one event loop and little else), ``C_pg`` cores
for PostgreSQL and one for the bus::

    throughput(n) = min(n / r(n), C_pg / p, 1 / q(n))

and everything on one machine of ``C`` cores (the clients elsewhere)::

    throughput = C / (r(n) + p + q(n))

``r`` and ``q`` are least-squares lines through the measured points (``s`` and ``u``
are kept ≥ 0); ``p`` is their median. PostgreSQL's own ceiling is modelled as CPU only:
its WAL flushes are shared by a whole group commit, so they bound latency, not rate,
until the disk's flush rate is reached (not measured here).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Model", "fit", "format_model"]

NODES = (1, 2, 3, 4, 6, 8, 12, 16)
PG_CORES = 4  # the model table's PostgreSQL machine
LINEAR = 0.9  # "still linear": at least this share of n × the one-node figure


@dataclass(frozen=True)
class Model:
    relay_first: float  # r1: relay CPU-s per message, one node
    relay_per_node: float  # s: added per extra node
    bus_first: float  # q1: nats-server CPU-s per message at one node
    bus_per_node: float  # u
    postgres: float  # p
    points: int  # measured node counts fitted

    def relay(self, n: int) -> float:
        return self.relay_first + self.relay_per_node * (n - 1)

    def bus(self, n: int) -> float:
        return self.bus_first + self.bus_per_node * (n - 1)

    def bounds(self, n: int, pg_cores: float = PG_CORES) -> dict[str, float]:
        """msgs/s each part allows with ``n`` one-core nodes and ``pg_cores`` for PostgreSQL."""
        inf = float("inf")
        return {
            "relay nodes": n / self.relay(n),
            "PostgreSQL": pg_cores / self.postgres if self.postgres > 0 else inf,
            "bus": 1 / self.bus(n) if self.bus(n) > 0 else inf,
        }

    def throughput(self, n: int, pg_cores: float = PG_CORES) -> tuple[float, str]:
        """(msgs/s, the part that bounds it)."""
        bounds = self.bounds(n, pg_cores)
        part = min(bounds, key=lambda k: bounds[k])
        return bounds[part], part

    def one_machine(self, n: int, cores: float) -> float:
        """msgs/s with every part on one machine of ``cores`` cores (clients elsewhere)."""
        return cores / (self.relay(n) + self.postgres + self.bus(n))

    def linear_until(self, pg_cores: float = PG_CORES) -> int:
        """The largest node count still giving ≥ LINEAR of n × the one-node figure."""
        one = self.throughput(1, pg_cores)[0]
        n = 1
        while n < 1000 and self.throughput(n + 1, pg_cores)[0] >= LINEAR * (n + 1) * one:
            n += 1
        return n


def _line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(value at x = 0, slope ≥ 0) of the least-squares line; flat through one point."""
    if len(xs) < 2:
        return statistics.fmean(ys), 0.0
    slope, intercept = statistics.linear_regression(xs, ys)
    if slope < 0:
        return statistics.fmean(ys), 0.0
    return intercept, slope


def fit(points: list[dict[str, Any]]) -> Model:
    """``points``: per measured node count, ``nodes`` and CPU-s per 1,000 messages of
    ``relay``, ``postgres`` and ``bus``."""
    xs = [float(p["nodes"] - 1) for p in points]
    r1, s = _line(xs, [p["relay"] / 1000 for p in points])
    q1, u = _line(xs, [p["bus"] / 1000 for p in points])
    return Model(r1, s, max(0.0, q1), u, statistics.median(p["postgres"] / 1000 for p in points),
                 len(points))


def as_dict(model: Model) -> dict[str, Any]:
    return {**asdict(model), "linear_until_nodes": model.linear_until(),
            "table": [{"nodes": n, "msgs_per_s": model.throughput(n)[0],
                       "bound_by": model.throughput(n)[1],
                       "one_2_core_machine": model.one_machine(n, 2)} for n in NODES]}


def format_model(model: Model) -> list[str]:
    ms = 1000.0
    lines = [
        f"model (fitted to {model.points} measured node counts; CPU-s per 1,000 msgs):"
        f" relay nodes {model.relay_first * ms:.3f} + {model.relay_per_node * ms:.3f}·(n−1),"
        f" PostgreSQL {model.postgres * ms:.3f},"
        f" bus {model.bus_first * ms:.3f} + {model.bus_per_node * ms:.3f}·(n−1)",
        f"  throughput(n) = min(n / relay(n), {PG_CORES} PG cores / PG, 1 bus core / bus(n));"
        f" on one machine of C cores: C / (relay(n) + PG + bus(n))",
        f"  {'nodes':>5}{'relay bound':>13}{'PG bound':>10}{'bus bound':>11}"
        f"{'predicted':>11}{'of linear':>10}  {'bound by':<12}{'all on 2 cores':>15}",
    ]
    one = model.throughput(1)[0]
    for n in NODES:
        b = model.bounds(n)
        t, part = model.throughput(n)
        lines.append(f"  {n:>5}{_rate(b['relay nodes']):>13}{_rate(b['PostgreSQL']):>10}"
                     f"{_rate(b['bus']):>11}{_rate(t):>11}{t / (n * one):>10.0%}  {part:<12}"
                     f"{_rate(model.one_machine(n, 2)):>15}")
    n = model.linear_until()
    lines.append(f"  linear (≥ {LINEAR:.0%} of n × one node) up to {n} node(s); beyond,"
                 f" {model.throughput(n + 1)[1]} bounds it")
    return lines


def _rate(value: float) -> str:
    return "∞" if value == float("inf") else f"{value:,.0f}"
