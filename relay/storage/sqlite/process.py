"""The SQLite writer in a process of its own (``writer = "process"``, the relay's default).

Why: in one process the writer's thread and the event loop share one GIL. The writer
lets it go in every SQLite call and waits for it to come back until the event loop's
burst of Python ends, so a third of its time went on waiting (docs/performance.md, "The
writer's serial path and the GIL"). A process of its own has a GIL of its own.

What moves: only the transactions. The relay process keeps the queue and the group
commit (writer.py), the reads (on their own connection to the same WAL file) and the
commit listeners. Each batch crosses a socket pair as one pickled message — each call's
write function by name, with its arguments — and comes back as one: each call's result
(or the ProtocolError it raised), the 1:1 messages and group events the commit stored,
and the users it saw block someone (the relay's reads need them: ``is_blocked``). The
child is the same :class:`SQLiteStore`, the same write functions and writer state (seq
counters, queue sizes, the dedupe log), run by the same ``transaction_now`` as in a
thread.

If the child dies, the batch in flight is answered ``unavailable`` (it may or may not
have committed: a send retried is recognised by its dedupe key and gets its first
answer), and the next batch starts a new child, which reads its state from the file as
any start does. The child ignores SIGINT and SIGTERM (a Ctrl-C reaches the whole
process group): the relay stops it after its last commit, and a relay that is gone
closes the socket, which ends the child too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from tenchat.common.errors import ErrorCode, ProtocolError

from ..errors import WriterGone
from ..writer import Call, Committed

if TYPE_CHECKING:
    from . import SQLiteStore

__all__ = ["WriterProcess"]

log = logging.getLogger("tenchat.relay.storage")

_HEADER: Final = struct.Struct(">Q")  # each message: its length, then the pickle
_PROTOCOL: Final = pickle.HIGHEST_PROTOCOL
_STREAM_LIMIT: Final = 1 << 20  # the stream reader's buffer (a reply may be larger)
_SOCKET_BUFFER: Final = 4 << 20  # a batch of 2,000 sends of 1 MiB frames is still a few writes
_STOP_TIMEOUT: Final = 30.0  # seconds the child may take to close its file at the end


class WriterProcess:
    """The relay's side: starts the child, sends it batches, stops it."""

    def __init__(self, settings: dict[str, Any]) -> None:
        # SQLiteStore's keyword arguments (path, sync, limits, clock): pickled once, at
        # start, so the clock must be picklable (a module-level function or object).
        self._settings = pickle.dumps(settings, _PROTOCOL)
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        # Several batches may be in flight (BatchWriter.pipeline): their replies are read
        # in the order they were sent (an asyncio.Lock is first come, first served).
        self._replies = asyncio.Lock()
        self._starting = asyncio.Lock()
        self._gone = False  # its socket closed: it is ending, whatever waitpid says yet

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and not self._gone and self._proc.poll() is None

    async def start(self) -> None:
        """Start the child and wait until it has opened the store (migrations run, the
        writer's state read); its failure to open is raised here."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for sock in (ours, theirs):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        try:
            # (subprocess, not asyncio's: no child watcher tied to this event loop)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno()), *_log_settings()],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        self._reader, self._writer = await asyncio.open_unix_connection(
            sock=ours, limit=_STREAM_LIMIT)
        self._send(self._settings)
        try:
            error = await self._receive()
        except WriterGone:
            await self._reap()
            raise RuntimeError("the SQLite writer process failed to start (see its error"
                               " above)") from None
        if error is not None:
            await self._reap()
            raise error

    async def run(self, calls: list[Call], out: Committed) -> list[bytes]:
        """Run ``calls`` in one transaction in the child; its results in ``out`` as the
        thread's transaction leaves them; the users it saw block someone. Raises what
        rolled the transaction back, or WriterGone if the child is gone."""
        if not self.running:
            async with self._starting:
                if not self.running:
                    await self._reap()
                    log.warning("the SQLite writer process is gone; starting a new one")
                    await self.start()
        self._send(pickle.dumps([(c.fn.__name__, c.args, c.kwargs) for c in calls], _PROTOCOL))
        async with self._replies:  # (no await between the send and here: replies in order)
            reply = await self._receive()
        if isinstance(reply, BaseException):
            raise reply
        results, stored, events, blockers = reply
        out.results.extend(zip([c.fut for c in calls], results, strict=True))
        out.stored.extend(stored)
        out.group_events.extend(events)
        return blockers

    async def stop(self) -> None:
        """After the last batch: the child closes its store and ends."""
        if self._writer is not None and self.running:
            with contextlib.suppress(ConnectionError):
                self._send(b"")
                await self._writer.drain()
        await self._reap()

    def _send(self, payload: bytes) -> None:
        assert self._writer is not None
        self._writer.writelines((_HEADER.pack(len(payload)), payload))

    async def _receive(self) -> Any:
        assert self._reader is not None
        try:
            (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
            return pickle.loads(await self._reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self._gone = True
            raise WriterGone("the SQLite writer process ended") from exc

    async def _reap(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = self._reader = None
        proc, self._proc, self._gone = self._proc, None, False
        if proc is None:
            return
        try:
            await asyncio.to_thread(proc.wait, _STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.error("the SQLite writer process did not end; killing it")
            proc.kill()
            await asyncio.to_thread(proc.wait)


# --- the child ----------------------------------------------------------------------------

class _Channel:
    """The child's end of the socket pair, blocking: this process has nothing else to do."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()  # received, not yet taken
        self._scratch = memoryview(bytearray(_STREAM_LIMIT))

    def _more(self) -> bool:
        try:
            n = self._sock.recv_into(self._scratch)
        except OSError:
            return False
        self._buf += self._scratch[:n]
        return n > 0

    def receive(self) -> bytes | None:
        """The next message; None when the relay is gone, or says stop (empty)."""
        buf = self._buf
        while len(buf) < _HEADER.size:
            if not self._more():
                return None
        (size,) = _HEADER.unpack_from(buf)
        end = _HEADER.size + size
        while len(buf) < end:
            if not self._more():
                return None
        payload = bytes(buf[_HEADER.size:end])
        del buf[:end]
        return payload or None

    def waiting(self) -> bool:
        """Has the relay sent another message already (at least its first bytes)?"""
        if self._buf:
            return True
        readable, _, _ = select.select([self._sock], [], [], 0)
        return bool(readable)

    def send_bytes(self, payload: bytes) -> None:
        self._sock.sendall(_HEADER.pack(len(payload)) + payload)

    def send(self, obj: Any) -> None:
        try:
            payload = pickle.dumps(obj, _PROTOCOL)
        except Exception as exc:  # an exception that does not pickle
            payload = pickle.dumps(RuntimeError(f"{type(obj).__name__}: {obj}"
                                                f" (not picklable: {exc})"), _PROTOCOL)
        self.send_bytes(payload)


async def _child(sock: socket.socket) -> None:
    from . import SQLiteStore

    channel = _Channel(sock)
    first = channel.receive()
    if first is None:
        return
    store = SQLiteStore(writer="thread", **pickle.loads(first))
    try:
        await store.open_writer()
    except Exception as exc:
        channel.send(exc)
        raise
    # What is alive now (the modules, the dedupe log read back) is never garbage: out of
    # the collector's passes. And fewer passes over the rest (a batch allocates thousands
    # of objects, nearly all freed by their counts): 4 % of this process's time, before.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    try:
        channel.send(None)
        _serve(store, channel)
    except OSError:
        pass  # the relay is gone
    finally:
        await store.close()


def _serve(store: SQLiteStore, channel: _Channel) -> None:
    """The batches, each transaction run right here, in this process's only busy thread
    (no hand-off to the connection's thread, no event loop turn). Batches that are
    already waiting when one arrives (the relay keeps up to ``pipeline`` in flight) go in
    the same transaction, so one commit (one fsync) answers them all; each still gets an
    answer of its own, in order."""
    writes = {name: getattr(type(store), name).__wrapped__ for name in _write_names(store)}
    while (request := channel.receive()) is not None:
        batches = [_calls(writes, request)]
        while len(batches) < _MERGE_MAX and channel.waiting():
            if (request := channel.receive()) is None:
                break  # (the loop ends at the next receive)
            batches.append(_calls(writes, request))
        if len(batches) > 1 and _answer_together(store, channel, batches):
            continue
        for calls in batches:
            try:
                reply = _commit(store, calls)
            except Exception as exc:
                channel.send(exc)
            else:
                channel.send_bytes(_dump(calls, reply))


def _answer_together(store: SQLiteStore, channel: _Channel, batches: list[list[Call]]) -> bool:
    """Run ``batches`` in one transaction and answer each; False if that transaction
    failed: then one batch's fault must not fail the others, and each is run on its own,
    as the relay sent it (which then retries a failed one's calls one by one)."""
    try:
        results, stored, events, blockers = _commit(
            store, [call for calls in batches for call in calls])
    except Exception:
        return False
    # The users seen blocking go with the first answer (the relay's reads must know them
    # before any answer is out), what to push with the last (after every answer, as for
    # one batch).
    last = len(batches) - 1
    for i, calls in enumerate(batches):
        channel.send_bytes(_dump(calls, (
            results[:len(calls)], stored if i == last else [],
            events if i == last else [], blockers if i == 0 else [])))
        del results[:len(calls)]
    return True


_MERGE_MAX: Final = 4  # batches in one transaction, at most

Reply = tuple[list[Any], list[Any], list[Any], list[bytes]]


def _calls(writes: dict[str, Callable[..., Any]], request: bytes) -> list[Call]:
    return [Call(writes[name], args, kwargs, None)  # type: ignore[arg-type]
            for name, args, kwargs in pickle.loads(request)]


def _commit(store: SQLiteStore, calls: list[Call]) -> Reply:
    """Run ``calls`` in one transaction: each one's result (or ProtocolError), the
    messages and group events it stored, the users it saw block someone."""
    out = Committed()
    store._blockers_added = []
    store.transaction_now(store.writer_connection, calls, out)
    return ([value for _, value in out.results], out.stored, out.group_events,
            store._blockers_added)


def _dump(calls: list[Call], reply: Reply) -> bytes:
    try:
        return pickle.dumps(reply, _PROTOCOL)
    except Exception:  # a bug: committed, but an answer does not pickle
        log.exception("a committed batch's answers do not pickle")
        error = ProtocolError(ErrorCode.INTERNAL, "the relay failed to answer")
        return pickle.dumps(([error] * len(calls), [], [], reply[3]), _PROTOCOL)


def _write_names(store: SQLiteStore) -> list[str]:
    """The store's @write functions (their submitters wrap them)."""
    return [name for name in dir(type(store))
            if callable(fn := getattr(type(store), name, None)) and hasattr(fn, "__wrapped__")]


def _log_settings() -> list[str]:
    """The relay's log level and format, for the child's lines in the same stream (its
    stderr is the relay's): JSON lines if the relay writes JSON lines."""
    from tenchat.relay.observability import JsonFormatter

    root = logging.getLogger()
    json_lines = any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
    return [logging.getLevelName(root.getEffectiveLevel()), "json" if json_lines else "text"]


def main(argv: list[str]) -> None:
    from tenchat.relay.observability import setup_logging

    # Ctrl-C and the service manager's SIGTERM reach the whole process group: the relay
    # stops its writer itself, after the last commit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    level, fmt = argv[2:4] if len(argv) >= 4 else ("warning", "text")
    setup_logging(level, fmt)
    sock = socket.socket(fileno=int(argv[1]))
    os.set_inheritable(sock.fileno(), False)
    sock.setblocking(True)
    asyncio.run(_child(sock))


if __name__ == "__main__":
    main(sys.argv)
