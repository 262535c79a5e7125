"""Run metadata (date, commit, machine) and plain-text formatting of results."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["environment", "percentiles", "ms"]

REPO = Path(__file__).resolve().parent.parent


def environment() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
    }


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def percentiles(samples_ns: list[int]) -> dict[str, float | int]:
    """p50 / p99 / max in milliseconds (nearest-rank), and the sample count."""
    if not samples_ns:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    s = sorted(samples_ns)
    n = len(s)

    def rank(q: float) -> float:
        return s[min(n - 1, max(0, math.ceil(round(q * n, 6)) - 1))] / 1e6

    return {"n": n, "p50": rank(0.50), "p99": rank(0.99), "max": s[-1] / 1e6}


def ms(value: float) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"
