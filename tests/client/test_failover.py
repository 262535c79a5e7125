"""A client given several URLs of one relay (its nodes) fails over: the relay process it
is on is killed (SIGKILL) and it carries on through the next URL within about a second.

The two relays here are separate processes with separate SQLite data (a relay cluster
shares its store, which SQLite cannot do across processes): what is tested is the
client's side — the next URL is dialled first, at once — and that it works there.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tenchat.client.connection import RelayList, RelayUnreachable, open_first
from tenchat.client.events import ONLINE, ConnectionChanged, MessageAdded
from tenchat.client.service import RECONNECT_FIRST, Client
from tests.client.test_live import Recorder
from tests.conftest import PASSPHRASE
from tests.support.relay import RelayProcess


def test_relay_list_order_and_failover() -> None:
    relays = RelayList(" ws://a:1 , ws://b:2,ws://c:3 ")
    assert relays.urls == ["ws://a:1", "ws://b:2", "ws://c:3"]
    assert relays.current == "ws://a:1"
    relays.lost()
    assert relays.in_order() == ["ws://b:2", "ws://c:3", "ws://a:1"]
    relays.lost()
    relays.lost()
    assert relays.current == "ws://a:1"
    with pytest.raises(RelayUnreachable, match="no relay URL"):
        RelayList(" , ")


@pytest.mark.asyncio
async def test_open_first_skips_unreachable_urls_and_reports_the_last_error() -> None:
    tried: list[str] = []

    class Down:
        def __init__(self, url: str) -> None:
            tried.append(url)
            self.url = url

        async def open(self) -> None:
            raise RelayUnreachable(f"cannot reach relay {self.url}: refused")

    relays = RelayList("ws://a:1,ws://b:2")
    relays.lost()
    with pytest.raises(RelayUnreachable, match="ws://a:1"):
        await open_first(relays, Down)
    assert tried == ["ws://b:2", "ws://a:1"]


@pytest.mark.slow
@pytest.mark.asyncio
async def test_sigkill_of_the_relay_node_moves_the_client_to_the_next(tmp_path: Path) -> None:
    async with asyncio.timeout(90):
        with RelayProcess(tmp_path / "a") as node_a, RelayProcess(tmp_path / "b") as node_b:
            both = f"{node_a.url},{node_b.url}"
            alice = await Client.create(tmp_path / "alice", both, "alice", PASSPHRASE)
            bob = await Client.create(tmp_path / "bob", node_b.url, "bob", PASSPHRASE)
            events, b_events = Recorder(alice), Recorder(bob)
            a_run = asyncio.create_task(alice.run())
            b_run = asyncio.create_task(bob.run())
            try:
                await events.wait_for(lambda e: isinstance(e, ConnectionChanged)
                                      and e.state == ONLINE)
                assert alice.relays.current == node_a.url
                events.events.clear()
                killed = time.monotonic()
                await asyncio.to_thread(node_a.kill)
                await events.wait_for(lambda e: isinstance(e, ConnectionChanged)
                                      and e.state == ONLINE, timeout=10)
                took = time.monotonic() - killed
                print(f"online on the other node {took:.3f} s after the kill")
                assert alice.relays.current == node_b.url
                # The first attempt after the loss went to the other node: one short wait,
                # no failed attempt (no wall-clock bound on a loaded machine but a loose one).
                waits = [e.retry_in for e in events.events
                         if isinstance(e, ConnectionChanged) and e.retry_in is not None]
                assert len(waits) == 1 and waits[0] <= RECONNECT_FIRST, waits
                assert took < 2.0, f"online on the other node {took:.2f} s after the kill"
                # ...and it works there: a message to a user of that node arrives.
                conv = await alice.start_conversation("@bob")
                await alice.compose(conv.peer, "still here")
                got = await b_events.wait_for(lambda e: isinstance(e, MessageAdded))
                assert isinstance(got, MessageAdded) and got.message.text == "still here"
            finally:
                for task in (a_run, b_run):
                    task.cancel()
                await asyncio.gather(a_run, b_run, return_exceptions=True)
                await alice.close()
                await bob.close()
