"""The relay server's per-frame rules in this process (tests/support/inproc.py): what
is refused before a frame is decoded (text, size, rate), the invite-only gate, a
handler's own failure, the connection caps and timeouts — each answered with its code
while the connection (or the relay, for a cut connection) keeps serving."""

from __future__ import annotations

import logging

import msgspec
import pytest
from nacl.signing import SigningKey

from tenchat.common import frames
from tenchat.common.frames import Error, GroupList, Groups, Hello, Lookup, Welcome
from tenchat.relay import handlers
from tenchat.relay.server import clock_from_environ, event_loop_factory
from tests.support.inproc import StartRelay, eventually


@pytest.mark.asyncio
async def test_text_and_oversized_frames_are_refused_and_the_connection_serves_on(
        relay_with: StartRelay) -> None:
    relay = await relay_with(max_frame=2048)
    peer = await relay.login()
    assert peer.conn._in  # its binary frames are read by RelayConnection itself
    peer.send_text('{"t": "hello"}')
    peer.send_raw(msgspec.msgpack.encode({"t": "lookup", "id": 77, "handle": "x" * 4000}))
    await eventually(lambda: len(peer.of(Error)) == 2)
    text, big = peer.of(Error)
    assert (text.error, text.id) == ("malformed", None)
    assert (big.error, big.id) == ("too_large", 77)  # the id is still named
    assert peer.conn._in is False  # after a text frame: by websockets, for good
    assert isinstance(await peer.call(GroupList), Groups)


@pytest.mark.asyncio
async def test_frames_over_the_connection_rate_are_refused_with_retry_after(
        relay_with: StartRelay) -> None:
    relay = await relay_with(rate_conn=1, burst_conn=3)
    peer = relay.connect()
    for i in range(1, 6):
        peer.send(Hello(id=i, versions=[1]))
    await eventually(lambda: len(peer.frames) == 5)
    limited = [f for f in peer.frames if isinstance(f, Error) and f.error == "rate_limited"]
    assert limited and all(f.retry_after > 0 for f in limited)
    assert {f.id for f in limited} <= {4, 5}  # the burst went through first
    assert isinstance(peer.frames[0], Welcome)


@pytest.mark.asyncio
async def test_an_invite_only_relay_serves_nothing_but_register_before_a_handle(
        relay_with: StartRelay) -> None:
    relay = await relay_with(registration="invite-only")
    peer = await relay.login(publish=False)
    reply = await peer.call(GroupList)
    assert isinstance(reply, Error) and reply.error == "invite_required"


@pytest.mark.asyncio
async def test_a_failing_handler_answers_internal_and_logs_no_frame_content(
        relay_with: StartRelay, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    relay = await relay_with()
    peer = await relay.login()

    async def broken(session: object, frame: Lookup) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setitem(handlers.HANDLERS, Lookup, broken)
    with caplog.at_level(logging.ERROR, logger="tenchat.relay"):
        reply = await peer.call(Lookup, handle="secrethandle")
    assert isinstance(reply, Error) and reply.error == "internal"
    assert "secrethandle" not in reply.message and "a bug" not in reply.message
    assert "handler failed" in caplog.text and "secrethandle" not in caplog.text
    assert isinstance(await peer.call(GroupList), Groups)  # still serving


@pytest.mark.asyncio
async def test_connections_per_address_are_capped(relay_with: StartRelay) -> None:
    relay = await relay_with(ip_conn_max=1, ip_conn_exempt=())
    first = await relay.login()
    second = relay.connect()  # the same address (loopback), over the cap
    await eventually(lambda: second.closed)
    assert second.close_code == 1013  # try again later
    assert isinstance(await first.call(GroupList), Groups)


@pytest.mark.asyncio
async def test_a_connection_that_never_authenticates_is_closed(
        relay_with: StartRelay) -> None:
    relay = await relay_with(auth_timeout=1)
    idle = relay.connect()
    await idle.call(Hello, versions=[1])  # but no auth
    signed_in = await relay.login(SigningKey.generate())
    await eventually(lambda: idle.closed, timeout=10)
    assert idle.close_code == 1008  # policy violation
    assert not signed_in.closed


def test_the_clock_takes_the_offset_from_the_environment() -> None:
    plain = clock_from_environ({})
    later = clock_from_environ({"TENCHAT_CLOCK_OFFSET_MS": "86400000"})
    assert 86_400_000 <= later() - plain() < 86_400_000 + 60_000


def test_the_event_loop_choice() -> None:
    assert event_loop_factory("asyncio") is None
    try:
        import uvloop
    except ImportError:
        with pytest.raises(OSError, match="not installed"):
            event_loop_factory("uvloop")
        assert event_loop_factory("auto") is None
    else:
        assert event_loop_factory("uvloop") is uvloop.new_event_loop
        assert event_loop_factory("auto") is uvloop.new_event_loop




@pytest.mark.asyncio
async def test_frames_after_the_hand_over_to_websockets_keep_their_order(
        relay_with: StartRelay) -> None:
    """A text frame hands the connection to websockets while a binary frame read before
    it still waits to be taken: a binary frame arriving after both is read by websockets
    too, after the text — answers in the order sent."""
    relay = await relay_with()
    peer = relay.connect()
    codec = peer._codec
    codec.send_binary(frames.encode(Hello(id=1, versions=[1])))
    codec.send_text(b'{"t": "hello"}')
    first = b"".join(codec.data_to_send())
    codec.send_binary(frames.encode(Hello(id=2, versions=[1])))
    second = b"".join(codec.data_to_send())
    peer.conn.data_received(first)  # frame 1 queued, not yet taken; the text: websockets'
    peer.conn.data_received(second)  # in the same loop turn
    await eventually(lambda: len(peer.frames) == 3)
    assert [getattr(f, "id", "?") for f in peer.frames] == [1, None, 2]
    assert isinstance(peer.frames[1], Error) and peer.frames[1].error == "malformed"
