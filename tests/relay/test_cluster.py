"""Two relay nodes on one store, joined by a real NATS bus: what a node commits or is
told for a user connected to the other node reaches that user there.

Two relay *processes* cannot share one SQLite data directory (the store keeps its
sequence numbers and queue counters in memory beside its single writer; see
docs/operations.md), so both nodes run in this process: two real
:class:`~tenchat.relay.server.Server` objects, each with its own WebSocket listener,
hub and bus connection, over one real SQLite store. The store announces every commit
through node A (as the node that committed it), so a commit reaches node B's clients
only through the bus.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nacl.signing import SigningKey

from bench._postgres import scratch_database
from tenchat.common import stories as st
from tenchat.common.frames import (
    Block,
    Bundle,
    Deliver,
    FetchBundle,
    FollowReq,
    FollowState,
    GroupDeliver,
    GroupSend,
    Moderate,
    Ok,
    PrekeysLow,
    Presence,
    PresenceState,
    Send,
    Stored,
    StoryNew,
    StoryPut,
    Subscribe,
    Synced,
    Watch,
)
from tenchat.relay.config import Config
from tenchat.relay.server import Server
from tenchat.relay.storage import SQLiteStore, Store
from tests.relay.test_relay_social import follow
from tests.relay.test_relay_stories import record
from tests.support.groups import TestGroup
from tests.support.inproc import eventually
from tests.support.relay import RelayProcess
from tests.support.services import NatsServer, free_port
from tests.support.wsclient import RelayClient, async_test, msg_id, new_key, user_of


class NodeStore:
    """One node's view of the shared store: its own commit listeners, the store's
    methods otherwise (opening and closing it is the test's)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.on_commit: Callable[..., None] | None = None
        self.on_group_commit: Callable[..., None] | None = None
        self.on_batch: Callable[..., None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass


@dataclass
class Cluster:
    store: Store
    nodes: list[Server]
    admin: SigningKey
    # The relay's name, and so its bus subject: unique per test, since tests running
    # at the same time share the NATS server.
    name: str = field(default_factory=lambda: f"test-relay-{uuid.uuid4().hex[:8]}")

    def url(self, i: int) -> str:
        return f"ws://127.0.0.1:{self.nodes[i].port}"

    async def login(self, i: int, key: SigningKey | None = None) -> RelayClient:
        client = await RelayClient.login(self.url(i), key or new_key(), self.name)
        await client.publish()
        return client


async def start_cluster(tmp_path: Path, bus: str, n: int = 2,
                        store: Store | None = None) -> Cluster:
    """``n`` nodes on ``store`` (opened here; default: SQLite under ``tmp_path``)."""
    store = store or SQLiteStore(tmp_path / "relay.sqlite3", sync="normal")
    await store.open()
    cluster = Cluster(store, [], new_key())
    for _ in range(n):
        await add_node(cluster, tmp_path, bus)
    # Node A announces every commit (as the node that committed it).
    first: Any = cluster.nodes[0].store
    store.on_commit = lambda stored: first.on_commit(stored)
    store.on_group_commit = lambda events: first.on_group_commit(events)
    return cluster


async def add_node(cluster: Cluster, tmp_path: Path, bus: str) -> Server:
    """Start one more node on the cluster's store; returns once every node has heard
    of every other one."""
    i = len(cluster.nodes)
    config = Config(host="127.0.0.1", port=0, data=tmp_path / f"node{i}", name=cluster.name,
                    log_level="warning", bus=bus, admins=(user_of(cluster.admin).hex(),),
                    ban_poll=3600)
    node = Server(config, store=NodeStore(cluster.store))  # type: ignore[arg-type]
    await node.startup()
    cluster.nodes.append(node)
    for each in cluster.nodes:
        assert each.cluster is not None
        await eventually(lambda c=each.cluster: len(c.nodes) == len(cluster.nodes) - 1, 10,
                         what=lambda: "the other nodes' hello")
    return node


async def stop_cluster(cluster: Cluster) -> None:
    for node in cluster.nodes:
        await node.shutdown()
    await cluster.store.close()


@pytest_asyncio.fixture
async def cluster(tmp_path: Path, nats_service: str) -> AsyncIterator[Cluster]:
    c = await start_cluster(tmp_path, nats_service)
    try:
        yield c
    finally:
        await stop_cluster(c)


async def contacts(a: RelayClient, b: RelayClient) -> None:
    """``a`` wrote to ``b`` and back (contacts may see each other's presence)."""
    for x, y in ((a, b), (b, a)):
        stored = await x.call(Send, to=y.user, msg=msg_id(), body=b"hi", conv=True)
        assert isinstance(stored, Stored), stored


@async_test
async def test_a_message_stored_through_one_node_is_pushed_on_the_other(
        cluster: Cluster) -> None:
    alice, bob = await cluster.login(0), await cluster.login(1)
    await bob.call(Subscribe)
    await bob.next_push(Synced)
    for body in (b"one", b"two", b"three"):
        stored = await alice.call(Send, to=bob.user, msg=msg_id(), body=body)
        assert isinstance(stored, Stored), stored
    got = [await bob.next_push(Deliver) for _ in range(3)]
    assert [d.body for d in got] == [b"one", b"two", b"three"]
    assert all(d.sender == alice.user for d in got)
    assert [d.seq for d in got] == sorted(d.seq for d in got)


@async_test
async def test_group_entries_and_typing_reach_members_on_the_other_node(
        cluster: Cluster) -> None:
    alice, bob = await cluster.login(0), await cluster.login(1)
    await bob.call(Subscribe)
    await bob.next_push(Synced)
    group = TestGroup()
    await group.change(alice, "create", name="g", members=[bob.user])
    change = await bob.next_push(GroupDeliver)  # the create, via the bus
    assert change.group == group.id and change.change
    ok = await alice.call(GroupSend, group=group.id, msg=msg_id(), body=b"typing", eph=True)
    assert isinstance(ok, Ok), ok
    typing = await bob.next_push(GroupDeliver)
    assert (typing.gseq, typing.body) == (0, b"typing")
    answer = await alice.call(GroupSend, group=group.id, msg=msg_id(), body=b"post")
    assert not hasattr(answer, "error"), answer
    post = await bob.next_push(GroupDeliver)
    assert post.body == b"post" and post.gseq > change.gseq


@async_test
async def test_presence_and_ephemeral_messages_cross_nodes(
        cluster: Cluster, tmp_path: Path, nats_service: str) -> None:
    alice, bob = await cluster.login(0), await cluster.login(1)
    await contacts(alice, bob)
    state = await bob.call(Watch, users=[alice.user])
    assert isinstance(state, PresenceState) and state.online == []
    await alice.call(Subscribe)  # alice comes online on node A
    await alice.next_push(Synced)  # (after bob's "hi")
    push = await bob.next_push(Presence)
    assert (push.user, push.online) == (alice.user, True)
    # an ephemeral message (typing) from node B's client to node A's
    ok = await bob.call(Send, to=alice.user, msg=msg_id(), body=b"typing", eph=True)
    assert isinstance(ok, Ok), ok
    typing = await alice.next_push(Deliver)
    assert (typing.seq, typing.body) == (0, b"typing")
    # a node started now learns who is online from the others' rosters
    await add_node(cluster, tmp_path, nats_service)
    carol = await cluster.login(2)
    await contacts(alice, carol)
    state = await carol.call(Watch, users=[alice.user])
    assert isinstance(state, PresenceState) and state.online == [alice.user]
    await alice.close()
    push = await bob.next_push(Presence)
    assert (push.user, push.online) == (alice.user, False)


@async_test
async def test_prekeys_low_and_a_block_reach_the_other_node(cluster: Cluster) -> None:
    alice, bob = await cluster.login(0), await cluster.login(1)
    await bob.publish(otk_ids=range(3))  # under otk_low: a fetch tells bob to refill
    bundle = await alice.call(FetchBundle, user=bob.user)
    assert isinstance(bundle, Bundle) and bundle.otk is not None
    low = await bob.next_push(PrekeysLow)
    assert low.otk_count == 2
    # bob (on B) sees alice's presence until she blocks him (on A)
    await contacts(alice, bob)
    await bob.call(Watch, users=[alice.user])
    await alice.call(Subscribe)
    push = await bob.next_push(Presence)
    assert (push.user, push.online) == (alice.user, True)
    ok = await alice.call(Block, user=bob.user)
    assert isinstance(ok, Ok), ok
    push = await bob.next_push(Presence)
    assert (push.user, push.online) == (alice.user, False)


@async_test
async def test_a_stopping_node_takes_its_users_offline_at_once(tmp_path: Path,
                                                               nats_service: str) -> None:
    cluster = await start_cluster(tmp_path, nats_service, n=3)
    try:
        alice, bob = await cluster.login(0), await cluster.login(1)
        await contacts(alice, bob)
        await bob.call(Watch, users=[alice.user])
        await alice.call(Subscribe)
        push = await bob.next_push(Presence)
        assert (push.user, push.online) == (alice.user, True)
        status, _, body = await cluster.nodes[1]._healthz()
        assert status == 200 and b'"bus": "connected"' in body
        await cluster.nodes[0].shutdown()  # says goodbye: no wait for the heartbeat timeout
        push = await bob.next_push(Presence, timeout=2)
        assert (push.user, push.online) == (alice.user, False)
        node_c = cluster.nodes[2].cluster
        assert node_c is not None and node_c.nodes == {cluster.nodes[1].cluster.node}
    finally:
        cluster.nodes.pop(0)
        await stop_cluster(cluster)


@async_test
async def test_a_ban_on_one_node_disconnects_the_user_on_the_other(cluster: Cluster) -> None:
    admin, bob = await cluster.login(0, cluster.admin), await cluster.login(1)
    ok = await admin.call(Moderate, action="ban", target=bob.user, reason="spam")
    assert isinstance(ok, Ok), ok
    await asyncio.wait_for(bob.ws.wait_closed(), 10)
    assert bob.ws.close_code == 1008 and bob.ws.close_reason == "banned"


@async_test
async def test_a_bus_restart_loses_nothing(tmp_path: Path) -> None:
    """The bus dies (SIGKILL) and comes back: what was stored meanwhile reaches the
    recipient on the other node (re-read from the store), and pushes resume."""
    with NatsServer(tmp_path / "nats") as bus:
        cluster = await start_cluster(tmp_path, bus.url)
        try:
            alice, bob = await cluster.login(0), await cluster.login(1)
            await bob.call(Subscribe)
            await bob.next_push(Synced)
            await alice.call(Send, to=bob.user, msg=msg_id(), body=b"before")
            assert (await bob.next_push(Deliver)).body == b"before"
            gaps = [node.cluster.gaps for node in cluster.nodes if node.cluster]
            bus.stop()
            for body in (b"while", b"down"):
                stored = await alice.call(Send, to=bob.user, msg=msg_id(), body=body)
                assert isinstance(stored, Stored), stored  # the store does not need the bus
            bus.start()
            got = [await bob.next_push(Deliver, timeout=15) for _ in range(2)]
            assert sorted(d.body for d in got) == [b"down", b"while"]
            node_b = cluster.nodes[1].cluster
            assert node_b is not None and node_b.gaps > gaps[1]  # it re-read the store
            await alice.call(Send, to=bob.user, msg=msg_id(), body=b"after")
            assert (await bob.next_push(Deliver)).body == b"after"
        finally:
            await stop_cluster(cluster)


@async_test
async def test_a_bus_restart_under_load_delivers_every_message_once(tmp_path: Path) -> None:
    """Sends go on while the bus is killed and restarted: the recipient on the other node
    gets every stored message, and none twice (a barrier message comes last)."""
    with NatsServer(tmp_path / "nats") as bus:
        cluster = await start_cluster(tmp_path, bus.url)
        try:
            alice, bob = await cluster.login(0), await cluster.login(1)
            await bob.call(Subscribe)
            await bob.next_push(Synced)
            sent: list[bytes] = []

            async def sender() -> None:
                for i in range(300):
                    mid = msg_id()
                    stored = await alice.call(Send, to=bob.user, msg=mid, body=b"%d" % i)
                    assert isinstance(stored, Stored), stored
                    sent.append(mid)
                    await asyncio.sleep(0.002)

            sending = asyncio.create_task(sender())
            await eventually(lambda: len(sent) >= 50, what=lambda: f"{len(sent)} sent")
            await asyncio.to_thread(bus.stop)
            down = len(sent)
            await eventually(lambda: len(sent) >= down + 50, what=lambda: f"{len(sent)} sent")
            await asyncio.to_thread(bus.start)
            await sending
            got = [(await bob.next_push(Deliver, timeout=15)).msg for _ in sent]
            last = msg_id()
            await alice.call(Send, to=bob.user, msg=last, body=b"barrier")
            assert (await bob.next_push(Deliver)).msg == last  # nothing twice before it
            assert sorted(got) == sorted(sent)
        finally:
            await stop_cluster(cluster)


@async_test
async def test_a_seq_committed_elsewhere_arriving_late_is_still_pushed(
        cluster: Cluster) -> None:
    """Seqs from another node can arrive after a higher one committed here: the
    subscription sends every seq it has not sent, once."""
    alice, bob = await cluster.login(0), await cluster.login(1)
    await bob.call(Subscribe)
    await bob.next_push(Synced)
    hub_b = cluster.nodes[1].hub
    late = Deliver(seq=10**12, msg=msg_id(), sender=alice.user, at=1, body=b"late")
    early = Deliver(seq=10**12 + 1, msg=msg_id(), sender=alice.user, at=1, body=b"early")
    hub_b.deliver([(bob.user, early, 0, False)])
    hub_b.deliver([(bob.user, late, 0, False)])
    hub_b.deliver([(bob.user, early, 0, False)])  # again: not sent twice
    ok = await alice.call(Send, to=bob.user, msg=msg_id(), body=b"barrier")
    assert isinstance(ok, Stored)
    bodies = []
    while not bodies or bodies[-1] != b"barrier":
        bodies.append((await bob.next_push(Deliver)).body)
    assert bodies == [b"early", b"late", b"barrier"]


def test_bus_setting() -> None:
    from tenchat.relay.bus import subject_for
    from tenchat.relay.config import ConfigError, load_config

    # one subject per relay name: relays sharing a NATS server don't hear each other
    chat, other = subject_for("chat.example.org"), subject_for("chat.example.net")
    assert chat != other and chat == subject_for("chat.example.org")
    assert chat.startswith("tenchat.relay.") and not set(chat) & set(" *>\t")

    assert load_config({}).bus == ""
    assert load_config({"bus": "nats://10.0.0.5:4222"}).bus == "nats://10.0.0.5:4222"
    with pytest.raises(ConfigError, match="invalid --bus: expected nats://HOST"):
        load_config({"bus": "redis://localhost"})


@pytest.mark.asyncio
async def test_the_bus_password_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    """Logs and errors name the bus without the credentials in its URL."""
    from tenchat.relay.bus import NatsBus, shown

    assert shown("tls://relay:s3cret@10.0.0.5:4222") == "tls://***@10.0.0.5:4222"
    assert shown("nats://10.0.0.5:4222") == "nats://10.0.0.5:4222"
    bus = NatsBus("nats://relay:s3cret@127.0.0.1:1")  # nothing listens there
    with pytest.raises(OSError) as refused:
        await bus.open(lambda data: None, lambda lost_own: None)
    assert "127.0.0.1:1" in str(refused.value)
    assert "s3cret" not in str(refused.value) and "s3cret" not in caplog.text


@pytest.mark.slow
def test_serve_with_a_bus_reports_it_in_healthz(tmp_path: Path, nats_service: str) -> None:
    """The `--bus` flag end to end: a relay process joins the bus and says so."""
    port = free_port()
    relay = RelayProcess(tmp_path / "data", name=f"test-relay-{uuid.uuid4().hex[:8]}",
                         args=["--bus", nats_service, "--metrics-port", str(port)])
    with relay, urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
        health = json.loads(resp.read())
    assert health["status"] == "ok" and health["bus"] == "connected"


@async_test
async def test_a_node_that_dies_unannounced_makes_the_others_re_read(
        cluster: Cluster, nats_service: str) -> None:
    """A node that dies between a commit and its publish (SIGKILL) leaves the message in
    the store only: when the others give the node up (3 heartbeats unheard), their
    connections re-read their queues and the recipient gets it."""
    import nats

    from tenchat.relay.bus import Heartbeat, encode_event, subject_for

    alice, bob = await cluster.login(0), await cluster.login(1)
    await bob.call(Subscribe)
    await bob.next_push(Synced)
    ghost = await nats.connect(nats_service)  # a node heard once, then never again
    try:
        await ghost.publish(subject_for(cluster.name), encode_event("ghost", Heartbeat()))
        await ghost.flush()
    finally:
        await ghost.close()
    node_b = cluster.nodes[1].cluster
    assert node_b is not None
    await eventually(lambda: "ghost" in node_b.nodes, what=lambda: "the ghost's heartbeat")
    # what the ghost committed and never published
    listener, cluster.store.on_commit = cluster.store.on_commit, None
    try:
        stored = await cluster.store.enqueue(bob.user, alice.user, msg_id(), b"orphan")
    finally:
        cluster.store.on_commit = listener
    gaps = node_b.gaps
    got = await bob.next_push(Deliver, timeout=10)
    assert (got.seq, got.body) == (stored.seq, b"orphan")
    assert node_b.gaps == gaps + 1 and "ghost" not in node_b.nodes


@pytest.fixture
def database(postgres_service: str) -> Iterator[str]:
    with scratch_database(postgres_service) as url:
        yield url


@async_test
async def test_a_group_entry_waits_for_the_one_before_it_from_another_node(
        tmp_path: Path, database: str, nats_service: str) -> None:
    """PostgreSQL numbers a group's entries in commit order; an entry that arrives
    before its predecessor (committed first, on another node, still on the bus) waits
    for it, so a member never gets gseq 11 before 10 (its ack, a cursor, would pass 10)."""
    from tenchat.relay.storage.postgres import PostgresStore

    cluster = await start_cluster(tmp_path, nats_service, store=PostgresStore(database))
    try:
        alice, bob = await cluster.login(0), await cluster.login(1)
        await bob.call(Subscribe)
        await bob.next_push(Synced)
        group = TestGroup()
        await group.change(alice, "create", name="g", members=[bob.user])
        await bob.next_push(GroupDeliver)  # the create
        # two posts committed elsewhere, their events held back
        held: list[Any] = []
        listener, cluster.store.on_group_commit = cluster.store.on_group_commit, held.extend
        try:
            for body in (b"first", b"second"):
                await cluster.store.group_post(group.id, alice.user, msg_id(), body, 0)
            await eventually(lambda: len(held) == 2, what=lambda: f"{held}")
        finally:
            cluster.store.on_group_commit = listener
        first, second = held
        assert second.prev == first.item.gseq
        hub_b = cluster.nodes[1].hub
        hub_b.deliver_groups([second])  # overtook the first on the way
        hub_b.deliver_groups([first])
        got = [await bob.next_push(GroupDeliver) for _ in range(2)]
        assert [(g.gseq, g.body) for g in got] == [(first.item.gseq, b"first"),
                                                   (second.item.gseq, b"second")]
        answer = await alice.call(GroupSend, group=group.id, msg=msg_id(), body=b"barrier")
        assert not hasattr(answer, "error"), answer
        assert (await bob.next_push(GroupDeliver)).body == b"barrier"  # nothing twice
        # a predecessor lost on the bus: the store is read after GAP_WAIT
        held.clear()
        cluster.store.on_group_commit = held.extend
        try:
            for body in (b"lost", b"late"):
                await cluster.store.group_post(group.id, alice.user, msg_id(), body, 0)
            await eventually(lambda: len(held) == 2, what=lambda: f"{held}")
        finally:
            cluster.store.on_group_commit = listener
        hub_b.deliver_groups([held[1]])
        got = [await bob.next_push(GroupDeliver) for _ in range(2)]
        assert [g.body for g in got] == [b"lost", b"late"]
    finally:
        await stop_cluster(cluster)


@async_test
async def test_a_new_story_reaches_a_follower_on_the_other_node(cluster: Cluster) -> None:
    alice, bob = await cluster.login(0), await cluster.login(1)
    state = await bob.call(FollowReq, record=follow(bob, alice))
    assert isinstance(state, FollowState) and state.state == "following", state
    await bob.call(Subscribe)
    await bob.next_push(Synced)
    rec = record(alice)
    assert isinstance(await alice.call(StoryPut, record=rec), Ok)
    push = await bob.next_push(StoryNew)  # from node A, through the bus
    assert (push.author, push.story) == (alice.user, st.open_story(rec).id)
