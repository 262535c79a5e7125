"""A relay can't add a device to someone's account (issue 16).

Relay M below is a few lines of websockets in front of a real relay: it passes every
frame through, except that it answers `devices_get` for chosen keys itself — with a list
naming Eve's device under Bob's account (signed by Eve, since Bob's key is not hers),
with Eve's own genuine list, or with Bob's own genuine but older list (a replay of a
device Bob removed). Alice's client must refuse each one, warn, and send nothing to Eve
or to the removed device.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from tenchat.client.service import Client
from tenchat.common import devices as dv
from tenchat.common import frames as f
from tests.client.test_devices_live import link, sync_all, texts
from tests.support.anvil import free_port
from tests.support.clients import PASSPHRASE, People
from tests.support.lying_relay import Answer, lying_relay, relay_behind
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


def answering(answers: dict[bytes, bytes]) -> Answer:
    """Relay M's lie: devices_get(user) for the users in ``answers`` (read at each
    request) answered with the record given there."""
    def answer(frame: f.Request) -> bytes | None:
        if isinstance(frame, f.DevicesGet) and frame.user in answers:
            return f.encode(f.DevicesInfo(id=frame.id, record=answers[frame.user]))
        return None
    return answer


@pytest.fixture
def m_port() -> int:
    return free_port()


@pytest.fixture
def relay(tmp_path: Path, m_port: int) -> Iterator[RelayProcess]:
    """The real relay, taking auth signed for M's origin too (as for its TLS front)."""
    with relay_behind(tmp_path / "relay", m_port) as proc:
        yield proc


def forged_list(bob: Client, eve: Client, version: int) -> bytes:
    """Bob's account with Eve's device in it, signed by Eve (all she can sign)."""
    entry = dv.DeviceEntry(key=eve.device_id, name="new phone", added=0,
                           sig=dv.sign_binding(eve.device, bob.user))
    devices = [bob.first_entry(), entry]
    return msgspec.msgpack.encode(dv.DeviceList(
        v=1, account=bob.user, version=version, devices=devices,
        sig=eve.identity.sign(dv.list_message(bob.user, version, devices))))


@pytest.mark.asyncio
async def test_the_relay_cannot_add_or_bring_back_a_device(
        people: People, relay: RelayProcess, m_port: int) -> None:
    alice, bob, eve = await people("alice", "bob", "eve")
    bob2 = await link(people, bob, "b2")
    old = (await bob.cache.devices.held(bob.user) or (b"", 0))[0]  # v2: first and b2
    await alice.send_text("bob", "hello")  # alice now holds bob's list: first, b2
    await bob.remove_device("b2")  # v3: first only
    await alice.send_text("bob", "after b2 left")  # and now v3
    await alice.close()
    eve_list = dv.make_list(eve.identity, 1, [eve.first_entry()])

    answers: dict[bytes, bytes] = {}
    url, server = await lying_relay(relay.url, answering(answers), m_port)
    alice = await Client.unlock(people.home("alice"), url, PASSPHRASE)
    people.made.append(alice)
    try:
        for lie, why in ((forged_list(bob, eve, 7), "not signed by its account key"),
                         (eve_list, "another account's"),
                         (old, "older than the one held")):
            answers[bob.user] = lie
            await alice.send_text("bob", f"lie: {why}")
            alerts = [a.text for a in await alice.device_alerts(bob.user)]
            assert why in alerts[-1], alerts
            assert [d for d in await alice.devices_of(bob.user, fresh=False)] == [bob.user]
    finally:
        await alice.close()
        server.close()
    await sync_all(bob, bob2, eve)
    assert [t for t, _ in await texts(bob, alice.user)] == [
        "hello", "after b2 left", "lie: not signed by its account key",
        "lie: another account's", "lie: older than the one held"]
    assert await texts(bob2, alice.user) == [("hello", False)]  # nothing after its removal
    assert await eve.cache.messages.history(alice.user, 10) == []  # nothing for Eve's device
