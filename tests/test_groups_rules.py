"""common.groups: signed change records and the rules both relay and clients enforce."""

from __future__ import annotations

import os

import pytest
from nacl.signing import SigningKey

from tenchat.common.errors import ProtocolError
from tenchat.common.groups import (
    ADMIN,
    GENESIS,
    MEMBER,
    OWNER,
    GroupChange,
    GroupState,
    can_pin,
    can_post,
    decode_signed,
    sign_change,
)

GROUP = os.urandom(16)


class Person:
    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.user = bytes(self.key.verify_key)

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data).signature


def record(state: GroupState, actor: Person, op: str, **fields: object) -> bytes:
    change = GroupChange(group=state.group, version=state.version + 1, prev=state.head,
                         actor=actor.user, at=0, op=op, **fields)  # type: ignore[arg-type]
    return sign_change(change, actor.sign)


def test_a_group_life() -> None:
    owner, bob, carol, dave = Person(), Person(), Person(), Person()
    state = GroupState(GROUP)
    records = [record(state, owner, "create", name="ops", members=[bob.user])]
    state.apply(records[-1])
    assert state.roles == {owner.user: OWNER, bob.user: MEMBER} and state.name == "ops"
    for op, actor, fields in [
        ("add", owner, {"members": [carol.user, dave.user]}),
        ("role", owner, {"members": [bob.user], "role": ADMIN}),
        ("remove", bob, {"members": [dave.user]}),  # an admin removes a member
        ("meta", bob, {"topic": "on call", "announce": True}),
        ("leave", carol, {}),
    ]:
        records.append(record(state, actor, op, **fields))
        state.apply(records[-1])
    assert state.roles == {owner.user: OWNER, bob.user: ADMIN}
    assert (state.topic, state.announce, state.version) == ("on call", True, 6)
    # a client replaying the chain from scratch reaches the same state
    again = GroupState.from_records(GROUP, records)
    assert again.roles == state.roles and again.head == state.head
    assert can_post(ADMIN, True) and not can_post(MEMBER, True) and can_post(MEMBER, False)
    assert can_pin(ADMIN) and not can_pin(MEMBER) and not can_post(None, False)


@pytest.mark.parametrize(
    ("actor", "op", "fields", "code"),
    [
        ("bob", "add", {"members": ["dave"]}, "forbidden"),  # a member can't add
        ("bob", "remove", {"members": ["carol"]}, "forbidden"),
        ("admin", "remove", {"members": ["owner"]}, "forbidden"),  # admin can't remove owner
        ("admin", "role", {"members": ["bob"], "role": "admin"}, "forbidden"),  # owner only
        ("dave", "add", {"members": ["dave"]}, "forbidden"),  # not a member at all
        ("owner", "leave", {}, "forbidden"),  # transfer ownership first
        ("owner", "add", {"members": ["bob"]}, "malformed"),  # already a member
        ("owner", "remove", {"members": ["dave"]}, "not_found"),
        ("owner", "frobnicate", {}, "malformed"),
        ("owner", "add", {"members": ["dave", "dave"]}, "malformed"),  # named twice
        ("owner", "add", {}, "malformed"),  # adds no one
        ("owner", "remove", {}, "malformed"),
        ("admin", "remove", {"members": ["admin"]}, "malformed"),  # leave instead
        ("bob", "leave", {"members": ["carol"]}, "malformed"),  # leave names only oneself
        ("owner", "role", {"members": ["bob"], "role": "king"}, "malformed"),
        ("owner", "role", {"role": ADMIN}, "malformed"),  # names no one
        ("owner", "role", {"members": ["bob", "carol"], "role": OWNER}, "malformed"),
        ("owner", "role", {"members": ["dave"], "role": ADMIN}, "not_found"),
        ("owner", "role", {"members": ["owner"], "role": MEMBER}, "malformed"),
        ("bob", "meta", {"topic": "mine now"}, "forbidden"),  # members don't edit meta
        ("admin", "meta", {"members": ["bob"], "topic": "x"}, "malformed"),
        ("admin", "meta", {}, "malformed"),  # changes nothing
        ("admin", "meta", {"name": ""}, "malformed"),  # a group keeps a name
        ("owner", "create", {"name": "again"}, "protocol"),  # the group exists
    ],
)
def test_rules(actor: str, op: str, fields: dict[str, object], code: str) -> None:
    people = {name: Person() for name in ("owner", "admin", "bob", "carol", "dave")}
    state = GroupState(GROUP)
    state.apply(record(state, people["owner"], "create", name="g",
                       members=[people[n].user for n in ("admin", "bob", "carol")]))
    state.apply(record(state, people["owner"], "role", members=[people["admin"].user],
                       role=ADMIN))
    resolved = {k: ([people[n].user for n in v] if k == "members" else v)  # type: ignore[union-attr]
                for k, v in fields.items()}
    before = dict(state.roles)
    with pytest.raises(ProtocolError) as err:
        state.apply(record(state, people[actor], op, **resolved))
    assert err.value.code == code
    assert state.roles == before and state.version == 2


def test_forged_and_replayed_records_are_rejected() -> None:
    owner, mallory = Person(), Person()
    state = GroupState(GROUP)
    create = record(state, owner, "create", name="g")
    state.apply(create)
    # signed by mallory but claiming the owner as actor
    change = GroupChange(group=GROUP, version=2, prev=state.head, actor=owner.user, at=0,
                         op="add", members=[mallory.user])
    with pytest.raises(ProtocolError) as err:
        state.apply(sign_change(change, mallory.sign))
    assert err.value.code == "bad_signature"
    with pytest.raises(ProtocolError) as err:  # a replay of an old record
        state.apply(create)
    assert err.value.code == "protocol"
    wrong_prev = GroupChange(group=GROUP, version=2, prev=GENESIS, actor=owner.user, at=0,
                             op="meta", name="x")
    with pytest.raises(ProtocolError):
        state.apply(sign_change(wrong_prev, owner.sign))
    with pytest.raises(ProtocolError) as err:
        decode_signed(b"\x93garbage")
    assert err.value.code == "malformed"
    assert state.version == 1 and state.roles == {owner.user: OWNER}


def test_a_create_needs_a_name_and_a_change_needs_the_group() -> None:
    owner = Person()
    state = GroupState(GROUP)
    with pytest.raises(ProtocolError) as err:
        state.apply(record(state, owner, "create"))
    assert err.value.code == "malformed"
    with pytest.raises(ProtocolError) as err:  # any other op before create: no such group
        state.apply(record(state, owner, "meta", topic="x"))
    assert err.value.code == "not_found"
    assert state.version == 0 and state.roles == {}


def test_a_record_of_another_group_is_refused() -> None:
    owner = Person()
    state, other = GroupState(GROUP), GroupState(os.urandom(16))
    with pytest.raises(ProtocolError) as err:
        state.apply(record(other, owner, "create", name="elsewhere"))
    assert err.value.code == "malformed" and state.version == 0


def test_ownership_moves_and_is_never_shared() -> None:
    owner, bob = Person(), Person()
    state = GroupState(GROUP)
    state.apply(record(state, owner, "create", name="g", members=[bob.user]))
    state.apply(record(state, owner, "role", members=[bob.user], role=OWNER))
    assert state.roles == {owner.user: ADMIN, bob.user: OWNER}
    # the former owner is an admin now: the owner's powers are bob's alone
    with pytest.raises(ProtocolError) as err:
        state.apply(record(state, owner, "role", members=[bob.user], role=MEMBER))
    assert err.value.code == "forbidden"
    state.apply(record(state, owner, "leave"))  # and, no longer owner, may leave
    assert state.roles == {bob.user: OWNER}
