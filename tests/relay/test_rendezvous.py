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
    me, other = b"m" * 32, b"o" * 32
    slots.put(b"a" * 32, b"blob", me)
    with pytest.raises(ProtocolError, match="taken"):  # never overwritten
        slots.put(b"a" * 32, b"other", other)
    assert slots.take(b"a" * 32) == b"blob"
    assert slots.take(b"a" * 32) is None  # used once
    slots.put(b"b" * 32, b"late", me)
    now[0] += rendezvous.SLOT_TTL
    assert slots.take(b"b" * 32) is None  # expired
    for i in range(rendezvous.MAX_PER_OWNER):
        slots.put(bytes([i]) * 32, b"x", me)
    with pytest.raises(ProtocolError, match="of yours"):  # one identity can't fill it
        slots.put(b"z" * 32, b"x", me)
    slots.put(b"z" * 32, b"x", other)
    monkeypatch.setattr(rendezvous, "MAX_BYTES", 10)
    with pytest.raises(ProtocolError, match="too many link blobs"):
        slots.put(b"d" * 32, b"1234567", other)
    assert slots.take(b"z" * 32) == b"x"
    for i in range(rendezvous.MAX_PER_OWNER):
        assert slots.take(bytes([i]) * 32) == b"x"
    slots.put(b"d" * 32, b"1234567", other)  # room again
