"""The dedupe keys of sends as stored (issue 17, less linkability).

A `send` (or `group_send`) is recognised as a retry by its (sender, msg) for
DEDUPE_WINDOW_MS after it was stored, also after the recipient acked it and the message
row is gone. What the `sent` (`group_sent`) table keeps for that is a digest of the pair,
never the pair: the relay sees
``msg`` (16 random bytes) only in transit, so a row read off the disk can't be tied to a
sender even by trying every identity. Both backends store (digest[:32], digest[32:48])
in the table's (sender, msg_id) columns (`group_sent`: its (sender, msg) columns).
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = ["dedupe_row"]

_PREFIX: Final = b"tenchat/relay-dedupe/v1"


def dedupe_row(sender: bytes, msg_id: bytes) -> tuple[bytes, bytes]:
    """The (sender, msg_id) columns of the `sent` row of a send."""
    digest = hashlib.sha512(_PREFIX + sender + msg_id).digest()
    return digest[:32], digest[32:48]
