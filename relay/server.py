"""The relay server: owns the store, the hub and the WebSocket listener, and their lifecycle.

``Server(config).serve()`` runs ``startup()``, ``main_loop()`` until SIGTERM or
SIGINT, then ``shutdown()``: stop accepting, reject new frames with
``unavailable``, commit everything already queued and send its answers, close
every connection with 1001 (going away).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import Error, decode_request, peek_id

from . import handlers
from .blobs import BlobFiles
from .config import Config
from .hub import Hub
from .session import Later, Session
from .store import SQLiteStore, Store

__all__ = ["Server", "clock_from_environ", "TEST_CLOCK_ENV"]

log = logging.getLogger("tenchat.relay")

_SHUTDOWN_GRACE: Final = 10.0  # seconds to send the last answers before closing anyway


TEST_CLOCK_ENV: Final = "TENCHAT_TEST_CLOCK_FILE"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def clock_from_environ(environ: Mapping[str, str]) -> Callable[[], int]:
    """The relay's clock (ms): the system's, or — for tests that fast-forward expiry — the
    system's plus the offset in ms written in the file named by TENCHAT_TEST_CLOCK_FILE
    (read at every call; a missing or empty file is 0)."""
    path = environ.get(TEST_CLOCK_ENV)
    if not path:
        return _now_ms
    skew_file = Path(path)

    def clock() -> int:
        try:
            skew = int(skew_file.read_text().strip() or 0)
        except (OSError, ValueError):
            skew = 0
        return _now_ms() + skew

    return clock


class Server:
    def __init__(self, config: Config, store: Store | None = None, *,
                 clock: Callable[[], int] = _now_ms) -> None:
        self.config = config
        self.clock = clock  # ms; injectable so tests can move past expiry
        self.store: Store = store or SQLiteStore(
            config.db_path,
            sync=config.sync,
            batch_max=config.batch_max,
            otk_max=config.otk_max,
            clock=clock,
        )
        self.hub = Hub()
        self.blobs = BlobFiles(config.blob_dir)
        self.sessions: set[Session] = set()
        self.should_exit = asyncio.Event()
        self.stopping = False
        self._ws: WsServer | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._story_sweeper: asyncio.Task[None] | None = None
        self.port: int | None = None  # the bound port, once listening

    async def serve(self) -> None:
        await self.startup()
        try:
            await self.main_loop()
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        config = self.config
        await self.store.open()
        self.blobs.open()
        self.store.on_commit = self.hub.publish
        self.store.on_group_commit = self.hub.publish_groups
        try:
            self._ws = await serve(
                self._connection,
                config.host,
                config.port,
                max_size=config.max_size_ceiling,
                compression=None,  # ciphertext does not compress; save CPU and memory
                server_header=None,
            )
        except OSError:
            await self.store.close()
            raise
        self.port = self._ws.sockets[0].getsockname()[1] if self._ws.sockets else config.port
        self._install_signal_handlers()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="expiry-sweep")
        self._story_sweeper = asyncio.create_task(self._story_sweep_loop(),
                                                  name="story-sweep")
        host = f"[{config.host}]" if ":" in config.host else config.host
        log.info("relay %r serving %s", config.name, config.db_path)
        print(f"listening on ws://{host}:{self.port}", flush=True)

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.handle_exit, sig)

    def handle_exit(self, sig: int | None = None) -> None:
        if sig is not None:
            log.info("received %s, shutting down", signal.Signals(sig).name)
        self.should_exit.set()

    async def main_loop(self) -> None:
        await self.should_exit.wait()

    async def _sweep_loop(self) -> None:
        """Delete expired messages and group entries: small transactions through the
        writer (sweep_batch rows per table each), every sweep_interval seconds."""
        interval, batch = self.config.sweep_interval, self.config.sweep_batch
        while True:
            await asyncio.sleep(interval)
            try:
                now = self.clock()
                total = 0
                while (deleted := await self.store.sweep(now, batch)) >= batch:
                    total += deleted
                total += deleted
                if total:
                    log.info("expiry sweep deleted %d rows or more", total)
            except ProtocolError:  # unavailable: shutting down
                return
            except Exception:
                log.exception("expiry sweep failed")

    async def sweep_stories(self) -> tuple[int, int]:
        """Delete every expired story and story image: batches of sweep_batch rows, each
        its own short write through the writer (so sends queue between them), then the
        blob files of the rows that went. (stories, blobs) deleted."""
        now, batch = self.clock(), self.config.sweep_batch
        n_stories = n_blobs = 0
        while True:
            swept = await self.store.sweep_stories(now, batch)
            n_stories += swept.stories
            n_blobs += len(swept.blobs)
            for blob in swept.blobs:
                await self.blobs.remove(blob)
            if swept.rows < batch:
                return n_stories, n_blobs
            await asyncio.sleep(0)  # let other work in between batches

    async def _story_sweep_loop(self) -> None:
        """Every story_sweep_interval seconds (an hour by default): sweep_stories."""
        while True:
            await asyncio.sleep(self.config.story_sweep_interval)
            try:
                n_stories, n_blobs = await self.sweep_stories()
                if n_stories or n_blobs:
                    log.info("story sweep deleted %d stories and %d blobs", n_stories, n_blobs)
            except ProtocolError:  # unavailable: shutting down
                return
            except Exception:
                log.exception("story sweep failed")

    async def shutdown(self) -> None:
        self.stopping = True
        for task in (self._sweeper, self._story_sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._ws is not None:
            self._ws.close(close_connections=False)  # stop accepting; keep the open ones
        for session in list(self.sessions):
            if session.subscription is not None:
                session.subscription.stop()
        await self.store.close()  # commits everything queued and resolves its futures
        sessions = list(self.sessions)
        if sessions:
            await asyncio.wait(
                [asyncio.ensure_future(s.drain_tasks(_SHUTDOWN_GRACE)) for s in sessions]
            )
            await asyncio.gather(
                *(s.ws.close(CloseCode.GOING_AWAY, "relay shutting down") for s in sessions),
                return_exceptions=True,
            )
        if self._ws is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ws.wait_closed(), _SHUTDOWN_GRACE)
        log.info("relay stopped")

    # --- connections ------------------------------------------------------------------------

    async def _connection(self, ws: ServerConnection) -> None:
        session = Session(ws, self.config, self.store, self.hub, self.blobs)
        self.sessions.add(session)
        try:
            async for data in ws:
                await session.slots.acquire()
                await self._receive(session, data)
        except ConnectionClosed:
            pass
        finally:
            session.close()
            self.sessions.discard(session)

    async def _receive(self, session: Session, data: str | bytes) -> None:
        """Answer one incoming frame; holds one of the session's slots until answered."""
        deferred = False
        rid: int | None = None
        try:
            if isinstance(data, str):
                raise ProtocolError(ErrorCode.MALFORMED, "frames must be binary messages")
            if len(data) > self.config.max_frame:
                raise ProtocolError(
                    ErrorCode.TOO_LARGE,
                    f"frame of {len(data)} bytes is over max_frame {self.config.max_frame}",
                )
            if self.stopping:
                raise ProtocolError(ErrorCode.UNAVAILABLE, "the relay is shutting down")
            frame = decode_request(data)
            rid = frame.id
            answer = await handlers.dispatch(session, frame)
            if answer is None:
                return
            if isinstance(answer, Later):
                session.defer(rid, answer)
                deferred = True
            else:
                await session.send(answer)
        except ProtocolError as exc:
            if rid is None and isinstance(data, bytes):
                rid = peek_id(data)
            await session.send(Error(id=rid, error=str(exc.code), message=exc.message))
        except Exception:
            log.exception("handler failed (frame id %s)", rid)
            await session.send(Error(id=rid, error=ErrorCode.INTERNAL, message="internal error"))
        finally:
            if not deferred:
                session.slots.release()


def run(config: Config) -> int:
    """Run a relay until it is told to stop; the process exit status."""
    logging.basicConfig(
        level=config.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(Server(config, clock=clock_from_environ(os.environ)).serve())
    return 0
