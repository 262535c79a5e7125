"""relay/rendezvous.py: one blob per slot, taken once, gone after its time (the clock is
moved, not waited for)."""

from __future__ import annotations

import pytest

from tenchat.common.errors import ProtocolError
from tenchat.relay import rendezvous
from tenchat.relay.rendezvous import Rendezvous


def test_single_use_and_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    slots = Rendezvous(clock=lambda: now[0])
    slots.put(b"a" * 32, b"blob")
    with pytest.raises(ProtocolError, match="taken"):  # never overwritten
        slots.put(b"a" * 32, b"other")
    assert slots.take(b"a" * 32) == b"blob"
    assert slots.take(b"a" * 32) is None  # used once
    slots.put(b"b" * 32, b"late")
    now[0] += rendezvous.SLOT_TTL
    assert slots.take(b"b" * 32) is None  # expired
    monkeypatch.setattr(rendezvous, "MAX_BYTES", 10)
    slots.put(b"c" * 32, b"12345")
    with pytest.raises(ProtocolError, match="too many"):
        slots.put(b"d" * 32, b"123456")
    assert slots.take(b"c" * 32) == b"12345"
    slots.put(b"d" * 32, b"123456")  # room again
