"""The NFT gate of a group (common.groups ``gate``, common.wallets.NftGate): set at
creation or by an admin's meta change, never by a plain member; b"" removes it."""

from __future__ import annotations

import pytest

from tenchat.common import wallets as w
from tenchat.common.errors import ProtocolError
from tenchat.common.groups import GroupState
from tests.test_groups_rules import GROUP, Person, record

GATE = w.NftGate(chain_id=31337, contract="0x5FbDB2315678afecb367f032d93F642f64180aa3")


def test_gate_set_by_admins_and_removed() -> None:
    owner, bob = Person(), Person()
    state = GroupState(GROUP)
    state.apply(record(state, owner, "create", name="cats", members=[bob.user]))
    assert state.gate == b""
    with pytest.raises(ProtocolError) as info:
        state.apply(record(state, bob, "meta", gate=w.encode_gate(GATE)))
    assert info.value.code == "forbidden"
    state.apply(record(state, owner, "meta", gate=w.encode_gate(GATE)))
    assert w.decode_gate(state.gate) == GATE
    state.apply(record(state, owner, "meta", gate=b""))
    assert state.gate == b""

    gated = GroupState(GROUP)
    gated.apply(record(gated, owner, "create", name="dogs", gate=w.encode_gate(GATE)))
    assert w.decode_gate(gated.gate) == GATE


def test_a_bad_gate_does_not_decode() -> None:
    with pytest.raises(ProtocolError) as info:
        w.decode_gate(b"\x81\xa1x\x01")
    assert info.value.code == "malformed"
