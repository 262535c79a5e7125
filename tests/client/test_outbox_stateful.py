"""The client's outbox and receive rules as a state machine (hypothesis): two real client
cores (alice writes to bob) and a relay, all in this process (tests/support/inproc.py; the
clients reach the relay over loopback, as in production).

Steps in any order: alice composes (into her outbox, committed), flushes; a flush whose
answers are lost (the relay stored the envelopes, alice crashed before clearing her
outbox, so she sends them again); bob syncs; bob gets the same deliveries twice (his ack
was lost); alice or bob restart from their cache; the relay restarts or is killed.

Whatever the interleaving: bob shows each of alice's messages at most once, only what
she wrote; and once everything settles (alice flushes, bob syncs) every message alice
composed is shown — nothing in an outbox is lost, nothing acked is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tenchat.client.connection import ConnectionLost, RelayError, RelayUnreachable
from tenchat.client.keystore import Keystore
from tenchat.client.service import Client
from tenchat.common import frames as f
from tests.conftest import PASSPHRASE
from tests.support.inproc import InProcRelay

T = TypeVar("T")
STEP_TIMEOUT = 30.0
_TEMPLATE: dict[str, Any] = {}  # made once per process: Argon2 makes identities slow


def _template() -> dict[str, Any]:
    """A relay data dir with alice and bob registered, their homes, and their secrets."""
    if not _TEMPLATE:
        base = Path(tempfile.mkdtemp(prefix="tenchat-outbox-template-"))

        async def make() -> None:
            async with InProcRelay(base / "relay") as relay:
                for name in ("alice", "bob"):
                    client = await Client.create(base / name, relay.url, name, PASSPHRASE)
                    await client.close()
                    _TEMPLATE[name] = Keystore.in_home(base / name).load(PASSPHRASE)

        with asyncio.Runner() as runner:
            runner.run(make())
        _TEMPLATE["base"] = base
    return _TEMPLATE


class Outbox(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        template = _template()
        self.dir = Path(tempfile.mkdtemp(prefix="tenchat-outbox-"))
        for name in ("relay", "alice", "bob"):
            shutil.copytree(template["base"] / name, self.dir / name)
        self.secrets = {name: template[name] for name in ("alice", "bob")}
        self.runner = asyncio.Runner()
        self.relay = InProcRelay(self.dir / "relay", name="inproc-relay")
        self.alice: Client | None = None
        self.bob: Client | None = None
        self.bob_user = b""
        self.composed: list[str] = []  # in alice's outbox or further, committed
        self.shown: list[str] = []  # what bob's inbox printed, in order
        self.count = 0

    def run(self, coro: Awaitable[T]) -> T:
        return self.runner.run(asyncio.wait_for(coro, STEP_TIMEOUT))  # type: ignore[arg-type]

    def teardown(self) -> None:
        async def close() -> None:
            for client in (self.alice, self.bob):
                if client is not None:
                    await client.close()
            if self.relay.server is not None:
                await self.relay.stop()

        try:
            self.run(close())
        finally:
            self.runner.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    async def _open(self, name: str) -> Client:
        return await Client.from_secrets(self.dir / name, self.relay.url, self.secrets[name])

    # --- steps ------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        async def go() -> None:
            await self.relay.start()
            self.alice, self.bob = await self._open("alice"), await self._open("bob")
            self.bob_user = self.bob.user

        self.run(go())

    @rule(n=st.integers(1, 4))
    def compose(self, n: int) -> None:
        async def go() -> None:
            assert self.alice is not None
            for _ in range(n):
                self.count += 1
                text = f"m{self.count}"
                await self.alice.queue_text(self.bob_user, text)
                self.composed.append(text)

        self.run(go())

    @rule()
    def flush(self) -> None:
        async def go() -> None:
            assert self.alice is not None
            await _retrying(self.alice.flush_outbox)

        self.run(go())

    @rule()
    def flush_answers_lost(self) -> None:
        """The relay stores alice's envelopes but she crashes before clearing her outbox."""
        async def go() -> None:
            alice = self.alice
            assert alice is not None
            await alice.encrypt_pending()  # (committed, as flush_outbox does first)
            items = await alice.cache.outbox.items()
            if items:
                conn = await _retrying(alice.connection)
                for item in items:
                    await conn.request(f.Send, to=item.peer, msg=item.msg_id,
                                       body=item.envelope, expires_at=item.expires_at,
                                       conv=item.written)
            # (nothing is uncommitted here: encrypt_pending committed, the rest only read)
            await alice.close()
            self.alice = await self._open("alice")

        self.run(go())

    @rule()
    def bob_sync(self) -> None:
        async def go() -> None:
            assert self.bob is not None
            await _retrying(self.bob.sync)
            self.shown += [m.text for m in await self.bob.take_unshown()]

        self.run(go())

    @rule()
    def alice_sync(self) -> None:
        """alice takes bob's receipts (her ratchet moves; his replies are receipts)."""
        async def go() -> None:
            assert self.alice is not None
            await _retrying(self.alice.sync)

        self.run(go())

    @rule()
    def bob_gets_the_same_deliveries_twice(self) -> None:
        """bob commits a page but his ack is lost: the relay delivers it again."""
        async def go() -> None:
            bob = self.bob
            assert bob is not None
            conn = await _retrying(bob.connection)
            page = await conn.request(f.Fetch, user=bob.user, after=0)
            assert isinstance(page, f.Messages)
            if page.items:
                await bob.receive(list(page.items))
                await bob.receive(list(page.items))
            self.shown += [m.text for m in await bob.take_unshown()]

        self.run(go())

    @rule(who=st.sampled_from(["alice", "bob"]))
    def client_restart(self, who: str) -> None:
        async def go() -> None:
            client = getattr(self, who)
            await client.close()
            setattr(self, who, await self._open(who))

        self.run(go())

    @rule(crash=st.booleans())
    def relay_restart(self, crash: bool) -> None:
        async def go() -> None:
            if crash:
                await self.relay.crash()
                await self.relay.start()
            else:
                await self.relay.restart()

        self.run(go())

    @rule()
    def settle(self) -> None:
        """Everything alice composed reaches bob, once."""
        async def go() -> None:
            assert self.alice is not None and self.bob is not None
            await _retrying(self.alice.flush_outbox)
            assert await self.alice.cache.outbox.items() == []
            await _retrying(self.bob.sync)
            self.shown += [m.text for m in await self.bob.take_unshown()]
            assert sorted(self.shown) == sorted(self.composed)

        self.run(go())

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def shown_at_most_once_and_only_what_alice_wrote(self) -> None:
        assert len(self.shown) == len(set(self.shown)), self.shown
        assert set(self.shown) <= set(self.composed)


async def _retrying(fn: Any) -> Any:
    """Call ``fn()``; once more if the connection was found dead (a relay restart)."""
    for attempt in range(3):
        try:
            return await fn()
        except (ConnectionLost, RelayUnreachable, RelayError) as exc:
            if attempt == 2 or (isinstance(exc, RelayError) and exc.code != "unavailable"):
                raise
            with contextlib.suppress(Exception):
                await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


Outbox.TestCase.settings = settings(
    max_examples=12, stateful_step_count=15, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOutbox = Outbox.TestCase
