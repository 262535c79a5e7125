"""client/connection.py against a relay in this process (tests/support/inproc.py, over
loopback): sign-in, the relay name pinned on first use, refusals turned into one
``RelayUnreachable``/``RelayError``, rate-limited frames sent again, answers that never
come, and the name probe. Hostile relays (bad answers to hello/auth) are in the slow
tests/e2e/test_hostile_relay*.py."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from nacl.signing import SigningKey

from tenchat.client.connection import (
    ConnectionLost,
    RateLimited,
    RelayChanged,
    RelayConnection,
    RelayError,
    RelayUnreachable,
    announced_name,
    is_not_found,
    tls_context,
)
from tenchat.common import frames as f
from tenchat.common import identity
from tenchat.relay import handlers
from tests.support.inproc import InProcRelay


@pytest_asyncio.fixture
async def relay(tmp_path: Path) -> AsyncIterator[InProcRelay]:
    relay = await InProcRelay(tmp_path / "relay", rate_conn=2, burst_conn=6).start()
    yield relay
    if relay.server is not None:
        await relay.stop()


def dial(url: str, key: SigningKey | None = None, **kw: object) -> RelayConnection:
    key = key or SigningKey.generate()
    return RelayConnection(url, user=bytes(key.verify_key),
                           sign=lambda m: key.sign(m).signature, **kw)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_sign_in_pins_the_relay_name_and_a_renamed_relay_is_refused(
        relay: InProcRelay, tmp_path: Path) -> None:
    known = tmp_path / "known_relays.json"
    key = SigningKey.generate()
    conn = dial(relay.url, key, known=known)
    authed = await conn.open()
    assert authed.user == bytes(key.verify_key) and conn.relay_name == relay.config.name
    assert conn.origin == identity.relay_origin(relay.url)
    await conn.close()
    assert await announced_name(relay.url) == relay.config.name
    # the same URL, later announcing another name: a relay swapped under the user
    await relay.stop()
    relay.config = dataclasses.replace(relay.config, name="impostor")
    await relay.start()
    with pytest.raises(RelayChanged) as info:
        await dial(relay.url, known=known).open()
    assert (info.value.announced, info.value.pinned) == ("impostor", "inproc-relay")


@pytest.mark.asyncio
async def test_refusals_become_one_error_and_replies_are_matched(relay: InProcRelay) -> None:
    with pytest.raises(RelayUnreachable):
        await dial("http://not-a-relay.example").open()
    with pytest.raises(RelayUnreachable):
        await dial("ws://127.0.0.1:1").open()  # nothing listens there
    with pytest.raises(RelayUnreachable):
        await announced_name("ws://127.0.0.1:1", timeout=2)
    conn = dial(relay.url)
    await conn.open()
    try:
        with pytest.raises(RelayError) as err:
            await conn.request(f.Lookup, handle="nobody")
        assert err.value.code == "not_found" and is_not_found(err.value)
        # more frames than the connection's burst: the rate-limited ones are sent again
        answers = [await conn.request(f.GroupList) for _ in range(10)]
        assert all(isinstance(a, f.Groups) for a in answers)
    finally:
        await conn.close()
    with pytest.raises(ConnectionLost):
        await conn.request(f.GroupList)  # closed: no request leaves


@pytest.mark.asyncio
async def test_a_refused_sign_in_is_unreachable(relay: InProcRelay) -> None:
    conn = dial(relay.url)
    conn._sign = lambda m: bytes(64)  # noqa: SLF001  (a signature that doesn't verify)
    with pytest.raises(RelayUnreachable, match="refused"):
        await conn.open()


@pytest.mark.asyncio
async def test_an_answer_that_never_comes_is_a_lost_connection(
        relay: InProcRelay, monkeypatch: pytest.MonkeyPatch) -> None:
    never = asyncio.Event()

    async def stuck(session: object, frame: f.GroupList) -> None:
        await never.wait()  # a relay that stopped answering

    monkeypatch.setitem(handlers.HANDLERS, f.GroupList, stuck)
    conn = dial(relay.url, timeout=0.5)
    await conn.open()
    try:
        with pytest.raises(ConnectionLost, match="did not answer"):
            await conn.request(f.GroupList)
    finally:
        never.set()
        await conn.close()


def test_a_ca_file_that_cannot_be_read_is_unreachable(tmp_path: Path) -> None:
    assert tls_context("ws://relay.example", None) is None  # plain ws: no TLS
    assert tls_context("wss://relay.example", None) is not None
    with pytest.raises(RelayUnreachable, match="CA file"):
        tls_context("wss://relay.example", tmp_path / "missing.pem")


@pytest.mark.asyncio
async def test_a_rate_limit_longer_than_the_timeout_is_raised_not_waited_out(
        tmp_path: Path) -> None:
    relay = await InProcRelay(tmp_path / "slow", rate_conn=1, burst_conn=3).start()
    try:
        conn = dial(relay.url, timeout=0.2)
        await conn.open()  # hello and auth: two of the three
        with pytest.raises(RateLimited) as info:
            for _ in range(5):
                await conn.request(f.GroupList)
        assert info.value.retry_after > 0.2
        await conn.close()
        await dial(relay.url).close()  # closing one never opened: nothing to do
    finally:
        await relay.stop()


@pytest.mark.asyncio
async def test_a_relay_that_answers_hello_with_something_else_is_unreachable(
        relay: InProcRelay, monkeypatch: pytest.MonkeyPatch) -> None:
    async def not_welcome(session: object, frame: f.Hello) -> f.Ok:
        return f.Ok(id=frame.id)

    monkeypatch.setitem(handlers.HANDLERS, f.Hello, not_welcome)
    with pytest.raises(RelayUnreachable, match="sent Ok to hello"):
        await dial(relay.url).open()
    with pytest.raises(RelayUnreachable, match="sent Ok to hello"):
        await announced_name(relay.url)
