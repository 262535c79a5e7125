"""Benchmarks of tenchat's hot paths (their targets: docs/performance.md).

Run from the repository root::

    python -m bench                     # every scenario, a plain-text table
    python -m bench --quick --json      # a short smoke run, machine-readable
    python -m bench.relay_throughput    # one scenario alone

Benchmarks start the relay as its own process (``python -m tenchat.relay serve``)
on a temporary data directory and talk to it only over loopback (127.0.0.1).
"""
