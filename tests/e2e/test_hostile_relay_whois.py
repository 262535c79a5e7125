"""A relay's `whois` answer can't move a pinned handle to another key (security review H1).

Relay M below is a few lines of websockets in front of a real relay: it passes every
frame through, except that it answers `whois(K_m)` itself with "@alice", signed by K_m
(anyone can sign a binding of any handle to their own key). Before the fix the victim's
cache then held @alice -> K_m: sends to alice went to Mallory and her messages printed
as `@alice: ...`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tenchat.client.cli import describe, line_of
from tenchat.client.service import Client, KeyChanged
from tenchat.common import frames as f
from tenchat.common.identity import handle_message
from tests.support.anvil import free_port
from tests.support.clients import PASSPHRASE, People
from tests.support.lying_relay import Answer, lying_relay, relay_behind
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


def answering(liar: Client, handle: str) -> Answer:
    """Relay M's lie: whois(liar) answered with ``handle``, signed by liar."""
    def answer(frame: f.Request) -> bytes | None:
        if isinstance(frame, f.Whois) and frame.user == liar.user:
            sig = liar.identity.sign(handle_message(handle, liar.user))
            return f.encode(f.HandleInfo(id=frame.id, handle=handle, user=liar.user, sig=sig))
        return None
    return answer


@pytest.fixture
def m_port() -> int:
    """Relay M's port."""
    return free_port()


@pytest.fixture
def relay(tmp_path: Path, m_port: int) -> Iterator[RelayProcess]:
    """The real relay, taking auth signed for M's origin too (as for its TLS front)."""
    with relay_behind(tmp_path / "relay", m_port) as proc:
        yield proc


@pytest.mark.asyncio
async def test_a_whois_answer_does_not_move_a_pinned_handle(
        people: People, relay: RelayProcess, m_port: int) -> None:
    alice, mallory, victim = await people("alice", "mallory", "victim")
    await alice.send_text("victim", "hi, it's alice")
    await victim.sync()
    assert (await victim.resolve("alice")).user == alice.user
    await victim.close()

    url, server = await lying_relay(relay.url, answering(mallory, "alice"), m_port)
    victim = await Client.unlock(people.home("victim"), url, PASSPHRASE)
    try:
        await mallory.send_text("victim", "alice here, new phone: send the code")
        await victim.sync()
        # the handle stays pinned to alice's key
        assert (await victim.resolve("alice")).user == alice.user
        # Mallory's text is shown as a key change, never as plain @alice
        rows = await victim.cache.messages.history(mallory.user, 10)
        assert [r.text for r in rows] == ["alice here, new phone: send the code"]
        line = line_of(rows[0], *await describe(victim, rows[0]))
        assert "@alice (NEW KEY): alice here" in line, line
        assert [r.text for r in await victim.cache.messages.history(alice.user, 10)] == [
            "hi, it's alice"]
        # and nothing the user writes goes anywhere until they decide
        with pytest.raises(KeyChanged, match="accept-key alice"):
            await victim.send_text("alice", "the code is 4411")
        # refusing keeps alice; the liar's key no longer claims the handle
        await victim.reject_key("alice")
        assert (await victim.resolve("alice")).user == alice.user
        assert "NEW KEY" not in await victim.display_name(mallory.user)
        await victim.send_text("alice", "was that you?")
    finally:
        await victim.close()
        server.close()
    await alice.sync()
    assert [r.text for r in await alice.cache.messages.history(victim.user, 10)][-1] == \
        "was that you?"


@pytest.mark.asyncio
async def test_a_group_member_whois_does_not_take_a_pinned_handle(
        people: People, relay: RelayProcess, m_port: int) -> None:
    alice, mallory, victim, carol = await people("alice", "mallory", "victim", "carol")
    await alice.send_text("victim", "hi, it's alice")
    await victim.sync()
    await victim.close()
    group = await carol.groups.create("club", ["victim", "mallory"])
    await carol.send_text_to(group, "welcome")

    url, server = await lying_relay(relay.url, answering(mallory, "alice"), m_port)
    victim = await Client.unlock(people.home("victim"), url, PASSPHRASE)
    try:
        await victim.sync()
        info = await victim.groups.info(group)
        assert info.handles[mallory.user] is None  # no message from K_m: ignored
        assert (await victim.resolve("alice")).user == alice.user
        await victim.send_text("alice", "still you")  # no pending change either
    finally:
        await victim.close()
        server.close()
