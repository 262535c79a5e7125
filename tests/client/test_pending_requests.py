"""Request matching by id (client/connection.py's PendingRequests), without a socket: what
both the client's RelayConnection and the tests' raw client rely on."""

from __future__ import annotations

import pytest

from tenchat.client.connection import ConnectionLost, PendingRequests
from tenchat.common import frames as f


@pytest.mark.asyncio
async def test_answers_complete_the_request_with_their_id_in_any_order() -> None:
    pending = PendingRequests()
    first, second = pending.next_id(), pending.next_id()
    assert (first, second) == (1, 2)
    a, b = pending.expect(first), pending.expect(second)
    assert pending.answer(f.Ok(id=second)) and pending.answer(f.Ok(id=first))
    assert (await a, await b) == (f.Ok(id=1), f.Ok(id=2))
    # answered once: the same id again, an unknown id or a push match nothing
    assert not pending.answer(f.Ok(id=first))
    assert not pending.answer(f.Ok(id=99))
    assert not pending.answer(f.Synced(seq=3))


@pytest.mark.asyncio
async def test_a_forgotten_request_takes_no_late_answer_and_the_end_fails_the_rest() -> None:
    pending = PendingRequests()
    late = pending.expect(pending.next_id())
    waiting = pending.expect(pending.next_id())
    pending.forget(1)
    assert not pending.answer(f.Ok(id=1)) and not late.done()
    pending.fail_all(lambda: ConnectionLost("gone"))
    with pytest.raises(ConnectionLost, match="gone"):
        await waiting
    assert not pending.answer(f.Ok(id=2))  # nothing waits any more
