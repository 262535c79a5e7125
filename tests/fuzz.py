"""A long fuzz run of the frame decoder and the relay's handlers (not in CI):

    python -m tests.fuzz --minutes 10 [--examples 200]

Runs tests/relay/test_fuzz.py with TENCHAT_FUZZ_SECONDS (the mixed fuzz loops that
long, checking bystanders and the relay's memory after each round) and
TENCHAT_FUZZ_EXAMPLES (examples per frame type and per round).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--examples", type=int, default=200)
    args = parser.parse_args()
    env = dict(os.environ, TENCHAT_FUZZ_SECONDS=str(args.minutes * 60),
               TENCHAT_FUZZ_EXAMPLES=str(args.examples))
    test = Path(__file__).parent / "relay" / "test_fuzz.py"
    return subprocess.call(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(test),
         "-o", "timeout=0"],
        env=env,
    )


if __name__ == "__main__":
    sys.exit(main())
