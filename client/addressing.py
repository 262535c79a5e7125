"""The device addressing layer (issue 16): which relay queue a copy of 1:1 content goes
to, under which relay message id — kept apart from what the envelope holds (the session
encryption, client/session_crypto.py) so either can change alone. ``routes`` in
client/devices.py makes the routes; client/sending.py queues one envelope per route.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["Route", "copy_id"]


@dataclass(frozen=True, slots=True)
class Route:
    device: bytes  # the relay queue (a device key) the copy goes to: ``send.to``
    relay_id: bytes  # its ``send.msg``
    body: bytes  # the plaintext content for that device
    own: bool  # one of our own other devices (a Sync copy, or our group sender key)


def copy_id(msg_id: bytes, device: bytes) -> bytes:
    """The relay-level id of one device's copy: the relay dedupes by (sender, id), so
    each copy needs its own; the message keeps ``msg_id`` inside the envelope."""
    return hashlib.blake2b(msg_id + device, digest_size=16, person=b"tenchat-copy").digest()
