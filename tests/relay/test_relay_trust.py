"""Issue 12, the relay's side: what a hostile client can do to a relay and its users —
deep frames, the audit log, prekey draining, throwaway identities, reaction spam, file
modes, presence. Each over a real relay process on loopback with real SQLite."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from tenchat.common.frames import Error
from tests.support.relay import RelayProcess
from tests.support.wsclient import (
    assert_alive,
    async_test,
    logged_in,
)


def err(reply: msgspec.Struct, code: str) -> Error:
    assert isinstance(reply, Error), reply
    assert reply.error == code, reply
    return reply


def start(tmp_path: Path, *args: str, env: dict[str, str] | None = None
          ) -> Iterator[RelayProcess]:
    with RelayProcess(tmp_path / "data", args=list(args), env=env) as proc:
        yield proc


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- item 6: deep MessagePack ------------------------------------------------------------------


def deep_frame(depth: int = 1000, in_map: bool = False) -> bytes:
    """A ~1 KB frame: ``depth`` nested one-element arrays (or a request map whose "id"
    is that)."""
    nested = b"\x91" * depth + b"\x01"
    return b"\x82\xa1t\xa6whois\xa2id" + nested if in_map else nested


def test_log_budget_logs_a_few_then_one_in_a_while() -> None:
    from tenchat.relay.limits import LogBudget

    clock = Clock()
    budget = LogBudget(rate=0.1, burst=3, clock=clock)
    assert [budget.take() for _ in range(5)] == [(True, 0)] * 3 + [(False, 0)] * 2
    clock.now += 10  # one more token
    assert budget.take() == (True, 2)  # and the record says two were left out
    assert budget.take() == (False, 0)


@pytest.mark.slow
@async_test
async def test_deep_frames_get_malformed_and_the_connection_lives(tmp_path: Path) -> None:
    relay = next(gen := start(tmp_path))
    try:
        async with logged_in(relay.url, 2) as (alice, bob):
            log_before = len(relay.log_tail(10**9))
            for depth in (1000, 5000, 100_000):
                for in_map in (False, True):
                    err(await alice.request_raw(deep_frame(depth, in_map), None), "malformed")
            for _ in range(200):
                await alice.ws.send(deep_frame())
            for _ in range(200):
                err(await alice.next_push(Error), "malformed")
            await assert_alive(alice, bob)  # the connection still works
            log = relay.log_tail(10**9)[log_before:]
            assert "Traceback" not in log
            assert len(log) < 4096, log[-2000:]
    finally:
        gen.close()


# --- item 11: file modes ------------------------------------------------------------------------


def modes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    out["."] = stat.S_IMODE(root.stat().st_mode)
    return out


@pytest.mark.slow
@async_test
async def test_data_dir_is_private_whatever_the_umask(tmp_path: Path) -> None:
    from tenchat.common.crypto.media import new_hasher
    from tenchat.common.frames import BlobBegin, BlobChunk, BlobStatus

    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "old.log").write_text("from an older relay\n")
    os.chmod(data / "old.log", 0o644)
    old = os.umask(0o022)
    try:
        relay = RelayProcess(data).start()
    finally:
        os.umask(old)
    try:
        async with logged_in(relay.url, 2) as (alice, bob):
            await assert_alive(alice, bob)
            blob = os.urandom(3000)
            h = new_hasher()
            h.update(blob)
            digest = h.digest()
            st = await alice.call(BlobBegin, hash=digest, size=len(blob))
            assert isinstance(st, BlobStatus), st
            half = await alice.call(BlobChunk, hash=digest, offset=0, data=blob[:1000])
            assert isinstance(half, BlobStatus), half
            seen = modes(data)  # a partial upload, the WAL and its index are there now
            assert any(name.endswith(".part") for name in seen), seen
            assert any(name.endswith("-wal") for name in seen), seen
            done = await alice.call(BlobChunk, hash=digest, offset=1000, data=blob[1000:])
            assert isinstance(done, BlobStatus) and done.offset == len(blob), done
            seen.update(modes(data))
    finally:
        relay.terminate()
    assert any(name.startswith("blobs/") and len(name) > 40 for name in seen), seen
    for name, mode in seen.items():
        path = data / name
        if path.is_dir():
            assert mode == 0o700, (name, oct(mode))
        else:
            assert mode == 0o600, (name, oct(mode))
