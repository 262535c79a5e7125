"""Faults the relay must ride out: its disk refusing writes, a network cut in the middle
of a frame, and clients whose clocks are hours off."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import sqlite3
import struct
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tenchat.common.crypto.media import blob_hash
from tenchat.common.frames import (
    Authed,
    BlobBegin,
    BlobChunk,
    BlobStatus,
    Error,
    Fetch,
    Messages,
    Send,
    Stored,
)
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, assert_alive, async_test, logged_in, msg_id

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# --- disk full -------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (the relay's SQLite writer)."""
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()]


@async_test
async def test_disk_full_is_refused_cleanly_and_service_resumes(tmp_path: Path) -> None:
    """The relay's file-size limit (RLIMIT_FSIZE, set on the running process like a full
    disk) makes every write fail: senders get storage_full, nothing is half-stored, reads
    go on, /healthz says 503; when the limit is lifted, writes work again."""
    port = free_port()
    relay = RelayProcess(tmp_path / "data", args=["--metrics-port", str(port)])
    with relay:
        assert relay.proc is not None
        pid = relay.proc.pid
        async with logged_in(relay.url) as (a, b):
            acked = []
            for _ in range(3):
                stored = await a.call(Send, to=b.user, msg=msg_id(), body=b"before")
                assert isinstance(stored, Stored)
                acked.append(stored.msg)
            data = os.urandom(100_000)
            blob = blob_hash(data)
            assert isinstance(await a.call(BlobBegin, hash=blob, size=len(data)), BlobStatus)

            # The disk is "full" for the relay and its SQLite writer process.
            pids = [pid, *_children(pid)]
            assert len(pids) == 2, pids  # writer = "process", the default
            hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
            for p in pids:
                resource.prlimit(p, resource.RLIMIT_FSIZE, (1, hard))
            try:
                refused = msg_id()
                for _ in range(3):  # the same message retried: refused each time
                    reply = await a.call(Send, to=b.user, msg=refused, body=b"during")
                    assert isinstance(reply, Error) and reply.error == "storage_full", reply
                reply = await a.call(BlobChunk, hash=blob, offset=0, data=data)
                assert isinstance(reply, Error) and reply.error == "storage_full", reply
                status, body = await asyncio.to_thread(health, port)
                assert status == 503 and body["store"]["writable"] is False, body
                # Reads still work, and show only what was stored.
                page = await b.call(Fetch, user=b.user)
                assert isinstance(page, Messages) and [m.msg for m in page.items] == acked
            finally:
                for p in pids:
                    resource.prlimit(p, resource.RLIMIT_FSIZE, (hard, hard))  # space is back

            status, body = await asyncio.to_thread(health, port)
            assert status == 200 and body["store"]["writable"] is True, body
            stored = await a.call(Send, to=b.user, msg=refused, body=b"during")
            assert isinstance(stored, Stored)  # the retry now goes through, once
            acked.append(refused)
            # The refused chunk left nothing behind: the upload goes on from offset 0.
            done = await a.call(BlobChunk, hash=blob, offset=0, data=data)
            assert isinstance(done, BlobStatus) and done.offset == len(data), done
            page = await b.call(Fetch, user=b.user)
            assert isinstance(page, Messages) and [m.msg for m in page.items] == acked
            await assert_alive(a, b)
        assert relay.terminate() == 0
    db = sqlite3.connect(relay.data_dir / "relay.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == len(acked)
    db.close()
    assert "Traceback" not in relay.log_tail(100_000)


# --- network cut mid-frame --------------------------------------------------------------------


def _ws_handshake(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _cut(sock: socket.socket) -> None:
    # SO_LINGER 0: close sends a RST, as a dropped link or a killed peer would look.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@async_test
async def test_network_cut_mid_frame(relay: RelayProcess) -> None:
    async with logged_in(relay.url) as (a, b):
        for _ in range(5):
            # Half of a 2,000-byte binary frame, then the connection is cut.
            sock = await asyncio.to_thread(_ws_handshake, relay.port)
            header = bytes([0x82, 0xFE]) + struct.pack("!H", 2000) + os.urandom(4)
            sock.sendall(header + os.urandom(1000))
            _cut(sock)
            # Half of the HTTP upgrade, then cut.
            raw = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
            raw.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr")
            _cut(raw)
            # Half a frame on a logged-in connection, then its transport is aborted.
            c = await RelayClient.login(relay.url, a.key)  # type: ignore[arg-type]
            c.ws.transport.write(bytes([0x82, 0xFE]) + struct.pack("!H", 3000) + b"\0" * 1504)
            c.ws.transport.abort()
            c._reader.cancel()
        # A half frame that just stays half: the relay keeps serving others meanwhile.
        hung = await asyncio.to_thread(_ws_handshake, relay.port)
        hung.sendall(bytes([0x82, 0xFE]) + struct.pack("!H", 500) + os.urandom(4) + b"x" * 10)
        await assert_alive(a, b)
        _cut(hung)
        await assert_alive(a, b)
    assert relay.running
    assert "Traceback" not in relay.log_tail(100_000)


# --- clock skew -------------------------------------------------------------------------------


@async_test
async def test_client_clock_hours_off(relay: RelayProcess) -> None:
    """Decision (docs/protocol.md §5.9): the relay's clock is the only clock the relay
    uses. Login has no timestamp, so a client's clock can't break it; `stored.at` and
    every time the relay keeps are its own; `send.expires_at` is read on the relay's
    clock, so a client computing it from a clock h hours off shifts the relay-side expiry
    by h (the end-to-end timer, counted by the recipient from receipt, is unaffected)."""
    hour = 3600 * 1000
    real_now = time.time_ns() // 1_000_000
    async with logged_in(relay.url) as (a, b):
        # The login above worked whatever the client's clock; so does a fresh one.
        again = await RelayClient.connect(relay.url)
        async with again:
            await again.hello()
            assert isinstance(await again.auth(a.key), Authed)  # type: ignore[arg-type]
        for skew in (-5 * hour, +5 * hour):
            client_now = real_now + skew
            stored = await a.call(Send, to=b.user, msg=msg_id(), body=b"x",
                                  expires_at=client_now + hour)  # a one-hour timer
            assert isinstance(stored, Stored)
            assert abs(stored.at - real_now) < 60_000, "stored.at is the relay's time"
        page = await b.call(Fetch, user=b.user)
        assert isinstance(page, Messages)
        # From the client 5 h behind: its expiry was 4 h ago on the relay's clock, so the
        # relay never delivers it. From the client 5 h ahead: delivered (kept 6 h).
        assert len(page.items) == 1 and page.items[0].seq == stored.seq


# --- a faulty write among others ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_failing_write_does_not_fail_its_batch_mates(tmp_path: Path) -> None:
    """A write that fails for a bug (here: a value SQLite can't store, which the frame
    checks now keep out) is answered alone; the sends committed in the same group commit
    are stored."""
    from tenchat.relay.storage import SQLiteStore

    store = SQLiteStore(tmp_path / "relay.sqlite3", sync="normal")
    await store.open()
    try:
        alice, bob = os.urandom(32), os.urandom(32)
        first = store.enqueue(bob, alice, msg_id(), b"one")
        bad = store.ack(bob, [2**64])  # queued in the same batch
        second = store.enqueue(bob, alice, msg_id(), b"two")
        results = await asyncio.gather(first, bad, second, return_exceptions=True)
        assert isinstance(results[1], OverflowError), results
        assert [r.seq for r in (results[0], results[2])] == [1, 2]  # type: ignore[union-attr]
        assert [m.body for m in await store.pending(bob, 0, 10)] == [b"one", b"two"]
    finally:
        await store.close()

