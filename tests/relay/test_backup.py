"""`tenchat-relay backup` while the relay serves traffic, then `restore` into a new data
directory: a relay started on it holds every message and blob acknowledged before the
backup began. Restore refuses a non-empty data directory with one `error:` line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tenchat.common.crypto.media import blob_hash
from tenchat.common.frames import (
    BlobBegin,
    BlobChunk,
    BlobData,
    BlobGet,
    BlobStatus,
    Fetch,
    Messages,
    Send,
    Stored,
)
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, async_test, logged_in, msg_id

pytestmark = pytest.mark.slow


def relay_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENCHAT_RELAY_")}
    return subprocess.run([sys.executable, "-m", "tenchat.relay", *args], capture_output=True,
                          text=True, env=env, timeout=120)


async def upload(c: RelayClient, data: bytes) -> bytes:
    h = blob_hash(data)
    assert isinstance(await c.call(BlobBegin, hash=h, size=len(data)), BlobStatus)
    status = await c.call(BlobChunk, hash=h, offset=0, data=data)
    assert isinstance(status, BlobStatus) and status.offset == len(data), status
    return h


@async_test
async def test_backup_during_traffic_then_restore(tmp_path: Path) -> None:
    with RelayProcess(tmp_path / "data") as relay:
        async with logged_in(relay.url) as (a, b):
            blob_data = os.urandom(200_000)
            blob = await upload(a, blob_data)
            acked: list[tuple[int, bytes]] = []
            stop = asyncio.Event()

            async def traffic() -> None:
                while not stop.is_set():
                    mid = msg_id()
                    stored = await a.call(Send, to=b.user, msg=mid, body=os.urandom(300))
                    assert isinstance(stored, Stored), stored
                    acked.append((stored.seq, mid))

            sender = asyncio.create_task(traffic())
            while len(acked) < 200:
                await asyncio.sleep(0.01)
            acked_before = list(acked)
            result = await asyncio.to_thread(relay_cli, "backup", str(tmp_path / "bk"),
                                             "--data", str(relay.data_dir))
            during = len(acked) - len(acked_before)
            while len(acked) < len(acked_before) + during + 50:  # traffic goes on after it
                await asyncio.sleep(0.01)
            stop.set()
            await sender
            assert result.returncode == 0, result.stderr
            assert result.stdout.startswith("backed up ")
            assert "1 blobs (200000 bytes)" in result.stdout, result.stdout

    restored = tmp_path / "restored"
    result = relay_cli("restore", str(tmp_path / "bk"), "--data", str(restored))
    assert result.returncode == 0, result.stderr
    with RelayProcess(restored) as relay2:
        # bob's queue was never acked: everything acked before the backup began is there.
        again_b = await RelayClient.login(relay2.url, b.key)  # type: ignore[arg-type]
        async with again_b:
            seen: dict[int, bytes] = {}
            after = 0
            while True:
                page = await again_b.call(Fetch, user=again_b.user, after=after, limit=1000)
                assert isinstance(page, Messages)
                if not page.items:
                    break
                seen.update((m.seq, m.msg) for m in page.items)
                after = page.items[-1].seq
            assert set(acked_before) <= set(seen.items())
            assert set(seen.items()) <= set(acked)  # nothing that was never acknowledged
            got = await again_b.call(BlobGet, hash=blob, offset=0, length=1 << 20)
            assert isinstance(got, BlobData) and got.data == blob_data
            # The restored relay takes new writes.
            stored = await again_b.call(Send, to=again_b.user, msg=msg_id(), body=b"x")
            assert isinstance(stored, Stored) and stored.seq > max(seen)

    # A data directory in use (not empty) is refused, with exactly one line.
    refused = relay_cli("restore", str(tmp_path / "bk"), "--data", str(restored))
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [f"error: data directory {restored} is not empty"]
    # So is a backup into a non-empty destination, and a source that is no backup.
    refused = relay_cli("backup", str(tmp_path / "bk"), "--data", str(restored))
    assert refused.returncode == 1 and refused.stderr.startswith("error: backup destination")
    refused = relay_cli("restore", str(tmp_path), "--data", str(tmp_path / "empty"))
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert "is not a relay backup" in refused.stderr
