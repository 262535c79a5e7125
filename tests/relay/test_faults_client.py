"""A client SIGKILLed in the middle of sending its outbox: on its next start the outbox
resumes, and the recipient gets every message exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenchat.client.service import Client
from tests.conftest import PASSPHRASE
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow

COUNT = 2000
# what alice's outbox sends: the messages, and her profile key, queued with the first
# message she writes to bob (sealed sender: client/sealed_sender.py)
ITEMS = COUNT + 1

CHILD = """
import asyncio, sys
from pathlib import Path
from tenchat.client.service import Client

async def main(home, url, passphrase, count):
    alice = await Client.unlock(Path(home), url, passphrase)
    bob = await alice.resolve("bob")
    for i in range(count):
        await alice.queue_text(bob.user, f"outbox message {i}")
    await alice.encrypt_pending()
    print("ready", flush=True)
    await alice.flush_outbox()
    print("done", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


def stored_count(relay: RelayProcess) -> int:
    db = sqlite3.connect(f"file:{relay.data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])
    except sqlite3.OperationalError:  # busy for a moment
        return 0
    finally:
        db.close()


@pytest.mark.asyncio
async def test_client_sigkill_mid_send_resumes_without_loss_or_duplicates(
    tmp_path: Path, relay: RelayProcess
) -> None:
    alice = await Client.create(tmp_path / "alice", relay.url, "alice", PASSPHRASE)
    bob = await Client.create(tmp_path / "bob", relay.url, "bob", PASSPHRASE)
    await alice.close()
    await bob.close()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "alice"), relay.url, PASSPHRASE,
         str(COUNT)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TENCHAT_")},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while stored_count(relay) < 100 and time.monotonic() < deadline:
            time.sleep(0.002)
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    at_kill = stored_count(relay)
    assert 100 <= at_kill < COUNT, f"the kill did not land mid-send ({at_kill} stored)"

    async with asyncio.timeout(120):
        alice = await Client.unlock(tmp_path / "alice", relay.url, PASSPHRASE)
        bob = await Client.unlock(tmp_path / "bob", relay.url, PASSPHRASE)
        try:
            # The outbox still holds every message the relay had not acknowledged (and
            # maybe some it had, whose ack the kill swallowed): all are sent again.
            left = len(await alice.cache.outbox.items())
            assert ITEMS - at_kill <= left <= ITEMS
            assert await alice.flush_outbox() == left
            assert await alice.cache.outbox.items() == []
            received: list[bytes] = []
            await bob.sync(on_messages=lambda rows: received.extend(r.id for r in rows))
            assert len(received) == COUNT == len(set(received)), "lost or duplicated"
            history = await bob.cache.messages.history(alice.user, COUNT * 2)
            texts = sorted(int(m.text.split()[-1]) for m in history)
            assert texts == list(range(COUNT))
        finally:
            await alice.close()
            await bob.close()
