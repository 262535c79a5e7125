"""A frame nested 100,000 deep from a hostile relay is malformed, also in a client that
has loaded the wallet code: eth-account (py_ecc) raises the recursion limit to 100,000
on import, and with it the decoder overflowed the C stack (the process died, signal 11).
A separate interpreter, as in a real `tenchat` process."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import tenchat.client.wallet.evm, tenchat.client.wallet.keys
from tenchat.common import frames
from tenchat.common.errors import ProtocolError
try:
    frames.decode_reply(b"\\x91" * 100_000 + b"\\xc0")
except ProtocolError as exc:
    print(exc.code, sys.getrecursionlimit())
"""


def test_deep_frames_stay_malformed_after_the_wallet_code_is_loaded() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    code, limit = proc.stdout.split()
    assert code == "malformed"
    assert int(limit) < 100_000
