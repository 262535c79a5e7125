"""A relay in the middle can't turn a user's sign-in into a login elsewhere (issue 21,
item 1), and a relay that changes the name it announces at a known URL is refused until
the user accepts it.

Relay M below is a few lines of websockets in front of a real relay A: it hands the
client A's own welcome (A's name, A's challenge) and forwards whatever the client signs
to A — before the fix this logged M into A as the user. Now the client signs the origin
it dialled (M's), and A refuses a signature for any origin but its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest
from eth_account import Account
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from tenchat.client.connection import RelayChanged, RelayConnection, RelayUnreachable
from tenchat.client.keystore import Secrets
from tenchat.client.known_relays import KnownRelays, known_relays_path
from tenchat.client.service import Client
from tenchat.common import frames as f
from tenchat.common.identity import relay_origin
from tests.conftest import Cli
from tests.support.clients import PASSPHRASE, People
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


async def forwarding_relay(upstream: str, replies: list[msgspec.Struct]):  # type: ignore[no-untyped-def]
    """Relay M: passes hello/welcome through from ``upstream`` and forwards the client's
    auth or wallet_auth — as signed, then with the origin rewritten to the upstream's —
    recording what the upstream answered."""
    async def handler(ws: ServerConnection) -> None:
        async with connect(upstream, max_size=None) as up:
            async for data in ws:
                frame = f.decode_request(data)  # type: ignore[arg-type]
                if isinstance(frame, f.Auth):
                    variants = [frame, msgspec.structs.replace(
                        frame, origin=relay_origin(upstream))]
                else:
                    variants = [frame]
                for variant in variants:
                    await up.send(f.encode(variant))
                    reply = f.decode_reply(await up.recv())  # type: ignore[arg-type]
                    if not isinstance(frame, f.Hello):
                        replies.append(reply)
                await ws.send(f.encode(reply))  # type: ignore[arg-type]

    server = await serve(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"ws://127.0.0.1:{port}", server


@pytest.mark.asyncio
async def test_a_forwarded_sign_in_does_not_log_in_upstream(people: People,
                                                            relay: RelayProcess) -> None:
    alice = await people.one("alice")
    home = people.home("alice")
    wallet = bytes(Account.create().key)
    address = await alice.wallet.import_key(wallet.hex())
    await alice.wallet.link(address)  # a wallet she can sign in with
    assert (await alice.wallet.signin(address)).user == alice.user  # at A itself: fine
    await alice.close()

    replies: list[msgspec.Struct] = []
    m_url, server = await forwarding_relay(relay.url, replies)
    try:
        # The identity key, through M: A refuses both the signature as made (for M's
        # origin) and the same signature presented for A's origin.
        conn = RelayConnection(m_url, user=alice.user, sign=alice.identity.sign,
                               known=known_relays_path(home))
        with pytest.raises(RelayUnreachable, match="refused"):
            await conn.open()
        assert [type(r) for r in replies] == [f.Error, f.Error]
        assert [r.error for r in replies] == ["auth_failed", "auth_failed"]  # type: ignore[attr-defined]
        assert "not this relay's" in replies[0].message  # type: ignore[attr-defined]

        # The wallet (SIWE), through M: the message's domain is M's, so A refuses it.
        replies.clear()
        via_m = await Client.unlock(home, m_url, PASSPHRASE)
        try:
            with pytest.raises(RelayUnreachable, match="refused"):
                await via_m.wallet.signin(address)
        finally:
            await via_m.close()
        assert len(replies) == 1 and isinstance(replies[0], f.Error)
        assert replies[0].error == "auth_failed"
        assert "ws://127.0.0.1" in replies[0].message
    finally:
        server.close()


@pytest.mark.relay(name="first-name")
def test_a_relay_that_changes_its_name_is_refused_until_trusted(cli: Cli,
                                                               relay: RelayProcess) -> None:
    cli("alice", "init", "--handle", "alice")
    pins = KnownRelays(known_relays_path(cli.home("alice"))).load()
    assert {k: v["name"] for k, v in pins.items()} == {
        relay_origin(relay.url): "first-name"}
    taken = cli("bob", "init", "--handle", "alice", check=False)
    assert taken.code == 1  # a failed init writes nothing, no pin either
    assert not known_relays_path(cli.home("bob")).exists()
    relay.name = "second-name"
    relay.restart()
    res = cli("alice", "whoami", check=False)  # offline command: still works
    assert res.code == 0
    res = cli("alice", "inbox", check=False)
    assert res.code == 1
    assert res.err.count("\n") == 1 and res.err.startswith("error: ")
    assert "now calls itself 'second-name', not 'first-name'" in res.err
    assert f"tenchat relay trust {relay_origin(relay.url)}" in res.err

    out = cli("alice", "relay", "trust", relay.url).out
    assert "now trusted as 'second-name' (was 'first-name')" in out
    assert cli("alice", "inbox").code == 0
    listed = cli("alice", "relay", "known", "--json").json_lines()
    assert [(r["relay"], r["name"]) for r in listed] == [
        (relay_origin(relay.url), "second-name")]


@pytest.mark.asyncio
async def test_pin_is_checked_before_anything_is_signed(tmp_path: Path) -> None:
    """A relay at a pinned URL announcing another name gets no signature at all."""
    seen: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        async for data in ws:
            frame = f.decode_request(data)  # type: ignore[arg-type]
            seen.append(type(frame).__name__)
            if isinstance(frame, f.Hello):
                await ws.send(f.encode(f.Welcome(
                    id=frame.id, version=1, relay="impostor", challenge=os.urandom(32),
                    max_frame=1 << 20)))

    server = await serve(handler, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    known = tmp_path / "known_relays.json"
    KnownRelays(known).pin(relay_origin(url), "genuine")
    secrets = Secrets(identity_seed=os.urandom(32), storage_key=os.urandom(32),
                      handle="alice", relay=url)
    from tenchat.common.crypto.keys import IdentityKey

    key = IdentityKey.from_seed(secrets.identity_seed)
    conn = RelayConnection(url, user=key.public, sign=key.sign, known=known)
    try:
        with pytest.raises(RelayChanged) as info:
            await conn.open()
        assert info.value.pinned == "genuine" and info.value.announced == "impostor"
    finally:
        server.close()
    assert seen == ["Hello"]  # no auth frame was ever sent
