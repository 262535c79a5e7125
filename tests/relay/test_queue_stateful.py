"""The relay's 1:1 queue as a state machine (hypothesis): sends, retries, acks,
reconnects, graceful restarts and crashes in any order, against the real server and
SQLite store in a temp dir, in this process (tests/support/inproc.py).

Whatever the interleaving:
- a message the relay answered ``stored`` is delivered until it is acked (a crash
  loses only writes that were never answered);
- a connection never gets a message twice, and gets its queue in seq order;
- an acked message never comes back, and a retry of a message (same sender and msg id)
  is stored once: it gets the original seq and is not delivered again;
- seqs only grow, across restarts and crashes too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from nacl.signing import SigningKey

from tenchat.common.frames import Ack, Deliver, Ok, Send, Stored, Subscribe, Synced
from tests.support.inproc import InProcRelay, Peer

STEP_TIMEOUT = 20.0


class RelayQueue(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.dir = Path(tempfile.mkdtemp(prefix="tenchat-queue-"))
        self.relay = InProcRelay(self.dir / "relay", page_size=4, live_buffer=4)
        self.alice_key, self.bob_key = SigningKey.generate(), SigningKey.generate()
        self.alice: Peer | None = None
        self.bob: Peer | None = None  # bob's current connection, subscribed; None: offline
        # The model: bob's queue as the relay has confirmed it (seq -> msg id, body).
        self.queue: dict[int, tuple[bytes, bytes]] = {}
        self.ids: dict[bytes, int] = {}  # every msg id answered `stored` -> its seq
        self.acked: set[int] = set()
        self.acked_before: set[int] = set()  # acked when bob's connection was made
        self.max_seq = 0
        self.received: set[int] = set()  # delivered to bob since he connected, not acked

    def run(self, coro: object) -> object:
        return self.runner.run(asyncio.wait_for(coro, STEP_TIMEOUT))  # type: ignore[arg-type]

    def teardown(self) -> None:
        try:
            if self.relay.server is not None:
                self.run(self.relay.stop())
        finally:
            self.runner.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- steps ------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        async def go() -> None:
            await self.relay.start()
            self.alice = await self.relay.login(self.alice_key)
            await self.relay.login(self.bob_key)  # registered, offline

        self.run(go())

    @rule(bodies=st.lists(st.binary(max_size=40), min_size=1, max_size=6))
    def send(self, bodies: list[bytes]) -> None:
        """alice pipelines a few sends; each answer is a new, higher seq."""
        async def go() -> None:
            alice = self.alice
            assert alice is not None
            frames = [Send(id=alice.next_id(), to=self.bob_user, msg=os.urandom(16), body=b)
                      for b in bodies]
            for frame in frames:
                alice.send(frame)
            for frame in frames:
                answer = await alice.wait_for(lambda f, i=frame.id: getattr(f, "id", 0) == i)
                assert isinstance(answer, Stored), answer
                assert answer.seq > self.max_seq, (answer.seq, self.max_seq)
                self.max_seq = answer.seq
                self.ids[frame.msg] = answer.seq
                self.queue[answer.seq] = (frame.msg, frame.body)
            if self.bob is not None:  # online: they arrive live
                await self._wait_delivered(self.bob, set(self.queue) - self.received)

        self.run(go())

    @precondition(lambda self: bool(self.ids))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        """alice sends one of her earlier messages again (a lost answer): same seq, no copy."""
        msg = data.draw(st.sampled_from(list(self.ids)))  # (insertion order: reproducible)
        seq = self.ids[msg]

        async def go() -> None:
            alice = self.alice
            assert alice is not None
            body = self.queue[seq][1] if seq in self.queue else b"again"
            answer = await alice.request(Send(id=alice.next_id(), to=self.bob_user, msg=msg,
                                              body=body))
            assert isinstance(answer, Stored), answer
            assert answer.seq == seq

        self.run(go())

    @precondition(lambda self: self.bob is not None and bool(self.received))
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        seqs = data.draw(st.lists(st.sampled_from(sorted(self.received)), min_size=1,
                                  unique=True))  # (by position: reproducible)
        also_old = data.draw(st.booleans()) and bool(self.acked)

        async def go() -> None:
            bob = self.bob
            assert bob is not None
            extra = [min(self.acked)] if also_old else []  # acking twice is harmless
            assert isinstance(await bob.call(Ack, seqs=seqs + extra), Ok)

        self.run(go())
        for seq in seqs:
            self.queue.pop(seq, None)
            self.received.discard(seq)
            self.acked.add(seq)

    @rule(during=st.lists(st.binary(max_size=40), max_size=12))
    def reconnect(self, during: list[bytes]) -> None:
        """bob (re)connects and subscribes, while alice sends ``during``: his whole queue
        in order, synced after what was queued before, the rest live — each once."""
        async def go() -> None:
            if self.bob is not None:
                await self.bob.close()
            bob = self.bob = await self.relay.login(self.bob_key, publish=False)
            self.received = set()
            self.acked_before = set(self.acked)
            before = dict(self.queue)
            bob.send(Subscribe(id=bob.next_id()))
            alice = self.alice
            assert alice is not None
            frames = [Send(id=alice.next_id(), to=self.bob_user, msg=os.urandom(16), body=b)
                      for b in during]
            for n, frame in enumerate(frames):
                alice.send(frame)
                if n % 3 == 2:
                    await asyncio.sleep(0)  # (let bob's drain and alice's commits interleave)
            synced = await bob.wait_for(lambda f: isinstance(f, Synced))
            for frame in frames:
                answer = await alice.wait_for(lambda f, i=frame.id: getattr(f, "id", 0) == i)
                assert isinstance(answer, Stored), answer
                self.max_seq = max(self.max_seq, answer.seq)
                self.ids[frame.msg] = answer.seq
                self.queue[answer.seq] = (frame.msg, frame.body)
            await self._wait_delivered(bob, set(self.queue))
            got = [f.seq for f in bob.of(Deliver)]
            assert got == sorted(self.queue), (got, sorted(self.queue))
            assert synced.seq >= (max(before) if before else 0)
            for item in bob.of(Deliver):
                assert (item.msg, item.body) == self.queue[item.seq]

        self.run(go())

    @rule()
    def restart(self) -> None:
        """SIGTERM and start again: every connection drops."""
        async def go() -> None:
            await self.relay.restart()
            self.bob = None
            self.received = set()
            self.alice = await self.relay.login(self.alice_key, publish=False)

        self.run(go())

    @rule(bodies=st.lists(st.binary(max_size=40), max_size=4))
    def crash(self, bodies: list[bytes]) -> None:
        """alice sends a few without waiting for the answers, and the relay is killed:
        each of those may or may not have been stored — but whole, and at most once."""
        async def go() -> None:
            alice = self.alice
            assert alice is not None
            frames = [Send(id=alice.next_id(), to=self.bob_user, msg=os.urandom(16), body=b)
                      for b in bodies]
            for frame in frames:
                alice.send(frame)
            await self.relay.crash()
            await self.relay.start()
            self.bob = None
            self.received = set()
            alice = self.alice = await self.relay.login(self.alice_key, publish=False)
            # Which of them the relay kept: alice retries them all, as her outbox would.
            kept = {d.msg: d for d in await self.relay.store.pending(self.bob_user, 0, 10_000)}
            for frame in frames:
                answer = await alice.request(msgspec.structs.replace(frame, id=alice.next_id()))
                assert isinstance(answer, Stored), answer
                if frame.msg in kept:
                    assert answer.seq == kept[frame.msg].seq
                    assert kept[frame.msg].body == frame.body
                assert answer.seq > self.max_seq or frame.msg in kept
                self.max_seq = max(self.max_seq, answer.seq)
                self.ids[frame.msg] = answer.seq
                self.queue[answer.seq] = (frame.msg, frame.body)

        self.run(go())

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def a_connection_gets_each_message_once_in_order(self) -> None:
        if self.bob is not None:
            seqs = [f.seq for f in self.bob.of(Deliver)]
            assert seqs == sorted(set(seqs)), seqs
            assert not set(seqs) & self.acked_before, "acked before this connection"

    # --- helpers ----------------------------------------------------------------------------

    @property
    def bob_user(self) -> bytes:
        return bytes(self.bob_key.verify_key)

    async def _wait_delivered(self, bob: Peer, seqs: set[int]) -> None:
        for seq in sorted(seqs):
            await bob.wait_for(lambda f, s=seq: isinstance(f, Deliver) and f.seq == s)
        self.received |= seqs


RelayQueue.TestCase.settings = settings(
    max_examples=20, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRelayQueue = RelayQueue.TestCase
