"""The relay server: owns the store, the hub and the WebSocket listener, and their lifecycle.

``Server(config).serve()`` runs ``startup()``, ``main_loop()`` until SIGTERM or
SIGINT, then ``shutdown()``: stop accepting, reject new frames with
``unavailable``, commit everything already queued and send its answers, close
every connection with 1001 (going away).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import signal
import ssl
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Final

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from tenchat.common.clock import clock_offset
from tenchat.common.errors import ErrorCode, ProtocolError
from tenchat.common.frames import Error, Register, decode_request, peek_id

from . import admin, handlers
from .chores import Chore, Chores, refused
from .cluster import Cluster
from .config import Config, accepted_origins
from .connection import RelayConnection
from .datalock import DataDirLock
from .files import secure_data_dir
from .handlers.devices import LINKING
from .hub import Hub
from .limits import AddressCounter, Buckets, Guards, LogBudget, UserBuckets, client_address
from .metrics import CONTENT_TYPE, Metrics
from .observability import HealthEndpoint, health_report, setup_logging
from .retention import Retention
from .session import Later, Session
from .shared_limits import SharedLimits
from .storage import SQLiteStore, Store, storage_error
from .storage.factory import blobs_for, storage_label, store_for

__all__ = ["Server", "clock_from_environ"]

log = logging.getLogger("tenchat.relay")

_SHUTDOWN_GRACE: Final = 10.0  # seconds to send the last answers before closing anyway




def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def clock_from_environ(environ: Mapping[str, str]) -> Callable[[], int]:
    """The relay's clock (ms): the system's, plus TENCHAT_CLOCK_OFFSET_MS if set
    (common.clock; read once, at start — tests restart a relay to move its clock)."""
    offset = clock_offset(environ)
    if not offset:
        return _now_ms
    return OffsetClock(offset)


class OffsetClock:
    """The system's clock moved by ``offset`` ms; an object, not a lambda, so that the
    SQLite writer process can be handed it (pickled)."""

    __slots__ = ("offset",)

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __call__(self) -> int:
        return _now_ms() + self.offset


class Server:
    def __init__(self, config: Config, store: Store | None = None, *,
                 clock: Callable[[], int] = _now_ms) -> None:
        self.config = config
        self.clock = clock  # ms; injectable so tests can move past expiry
        self.store: Store = store or store_for(
            config.storage,
            config.db_path,
            sync=config.sync,
            writer=config.writer,
            batch_max=config.batch_max,
            otk_max=config.otk_max,
            queue_max=config.queue_max,
            queue_bytes_max=config.queue_bytes,
            queue_share=config.queue_share,
            reactions_max=config.reactions_max,
            clock=clock,
        )
        self.hub = Hub()
        self.cluster: Cluster | None = None  # with a bus: the link to the other nodes
        self._data_lock: DataDirLock | None = None  # held while serving a SQLite data dir
        self.blobs = blobs_for(self.store, config.blob_dir)
        self.sessions: set[Session] = set()
        self.should_exit = asyncio.Event()
        self.stopping = False
        self._ws: WsServer | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.port: int | None = None  # the bound port, once listening
        self.origins: frozenset[str] = frozenset()  # what auth may name, once listening
        self.metrics = Metrics()
        self.store.on_batch = self.metrics.batch
        self.retention = Retention(
            self.store, self.blobs, retention_days=config.retention_days,
            upload_expiry_hours=config.upload_expiry_hours, batch=config.sweep_batch,
            metrics=self.metrics, audit_retention_days=config.audit_retention_days,
        )
        # the sweeps and retention, run by the cluster's leader (relay/chores.py)
        self.chores = Chores(self.store, self.metrics)
        self._health: HealthEndpoint | None = None
        self._started = time.monotonic()
        self.user_buckets: Buckets = UserBuckets(config.rate_user, config.burst_user)
        self.shared_limits: SharedLimits | None = None  # limits over a cluster's nodes
        self.addresses = AddressCounter(config.ip_conn_max, config.ip_conn_exempt)
        self._proxies = frozenset(config.forwarded_allow)  # whose X-Forwarded-For is read
        self._last_ban = 0  # the newest ban id seen
        # Tracebacks of failed frames: a few, then one a minute (a flood of bad frames
        # must not fill the disk through the log).
        self.log_budget = LogBudget()
        self.guards = Guards(config)
        self.audit = admin.AuditAggregator(self.store, config.audit_window)

    async def serve(self) -> None:
        await self.startup()
        try:
            await self.main_loop()
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        config = self.config
        if isinstance(self.store, SQLiteStore) and self.store.path == config.db_path:
            secure_data_dir(config.data, config.db_path)
            self._data_lock = DataDirLock(config.data)
            self._data_lock.acquire()  # before the store reads its counters
        try:
            await self.store.open()
        except BaseException:
            self._release_data()
            raise
        self.blobs.open()
        self.store.on_commit = self.hub.publish
        self.store.on_group_commit = self.hub.publish_groups
        self.hub.followers = self.store.followers
        try:
            if config.bus:
                from .bus import open_bus

                self.cluster = Cluster(self.hub, open_bus(config.bus, config.name))
                await self.cluster.start()  # before the first connection subscribes
            if self.store.shares_limits:
                self._share_limits()
            self._last_ban = await self.store.last_ban()
            self._ws = await serve(
                self._connection,
                config.host,
                config.port,
                max_size=config.max_size_ceiling,
                compression=None,  # ciphertext does not compress; save CPU and memory
                server_header=None,
                ssl=self._tls_context(),
                process_request=self._admit,
                write_limit=config.write_limit,
                create_connection=RelayConnection,
            )
        except OSError:
            if self.shared_limits is not None:
                await self.shared_limits.close()
            await self.store.close()
            if self.cluster is not None:
                await self.cluster.close()
            self._release_data()
            raise
        self.port = self._ws.sockets[0].getsockname()[1] if self._ws.sockets else config.port
        self.origins = accepted_origins(config, self.port)
        self._install_signal_handlers()
        self.chores.start([
            Chore("expiry sweep", config.sweep_interval, self.sweep_expired),
            Chore("retention", config.sweep_interval, self.retention.run_logged),
            Chore("story sweep", config.story_sweep_interval, self._sweep_stories_logged),
            *([Chore("rate limit prune", config.sweep_interval, self.store.prune_limits)]
              if self.shared_limits is not None else []),
        ])
        if config.metrics_port:
            self._health = HealthEndpoint(config.metrics_host, config.metrics_port, {
                "/healthz": self._healthz, "/metrics": self._metrics,
            })
            await self._health.start()
            log.info("health and metrics on http://%s:%d", config.metrics_host,
                     self._health.port)
        self._watcher = asyncio.create_task(self._watch_loop(), name="connection-watch")
        host = f"[{config.host}]" if ":" in config.host else config.host
        log.info("relay %r serving %s", config.name,
                 config.db_path if config.storage == "sqlite" else storage_label(config.storage))
        log.info("auth accepted for %s", ", ".join(sorted(self.origins)))
        scheme = "wss" if config.tls else "ws"
        print(f"listening on {scheme}://{host}:{self.port}", flush=True)

    def _share_limits(self) -> None:
        """Count the per-identity and per-address rate limits in the store, over every
        node sharing it (relay/shared_limits.py), instead of in this process."""
        cluster = self.cluster
        shared = SharedLimits(self.store, cluster.node if cluster else os.urandom(8).hex())
        shared.nodes = lambda: len(cluster.nodes) + 1 if cluster is not None else 1
        self.user_buckets = shared.buckets("frames", self.config.rate_user,
                                           self.config.burst_user)
        self.guards = Guards(self.config, make=shared.buckets)
        shared.start()
        self.shared_limits = shared

    def _tls_context(self) -> ssl.SSLContext | None:
        config = self.config
        if config.tls_cert is None or config.tls_key is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(config.tls_cert, config.tls_key)
        except ssl.SSLError as exc:
            raise OSError(f"cannot load tls_cert / tls_key: {exc.reason or exc}") from None
        return context

    def _admit(self, ws: ServerConnection, request: Request) -> Response | None:
        """Before the WebSocket handshake: refuse an address over its connection cap."""
        address = client_address(ws.remote_address, request.headers, self._proxies)
        if self.addresses.full(address):
            log.info("refused a connection from an address at ip_conn_max")
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE,
                              "too many connections from this address\n")
        return None

    async def _watch_loop(self) -> None:
        """Once a second: close connections that never authenticated (auth_timeout), cut
        readers that stopped reading (send_timeout), and disconnect identities banned
        since the last look (ban_poll, for bans made by `tenchat-relay admin`)."""
        config = self.config
        next_ban_poll = 0.0
        polls_failing = False
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            try:
                for session in list(self.sessions):
                    if session.user is None and now - session.opened > config.auth_timeout:
                        session.opened = float("inf")  # close once
                        admin.disconnect(session, "authentication timeout")
                    if session.ws.paused:  # the write buffer is over write_limit
                        # A reader that is slow but reading lowers the buffer now and then
                        # (while paused, senders wait); one that stopped never does.
                        size = session.ws.transport.get_write_buffer_size()
                        if session.stalled_since is None or size < session.stall_low:
                            session.stalled_since, session.stall_low = now, size
                        elif now - session.stalled_since >= config.send_timeout:
                            log.info("cut a connection that stopped reading (send_timeout)")
                            session.ws.transport.abort()  # its queue waits in the database
                    else:
                        session.stalled_since = None
                if now >= next_ban_poll:
                    next_ban_poll = now + config.ban_poll
                    for ban_id, user in await self.store.bans_after(self._last_ban):
                        self._last_ban = ban_id
                        # (every node looks: each closes its own connections)
                        self.hub.deliver_disconnect(user, "banned")
                    if polls_failing:
                        polls_failing = False
                        log.info("the ban poll reads the store again")
            except Exception as exc:
                if (problem := refused(exc)) is None:
                    log.exception("connection watch failed")
                elif not polls_failing:  # (the database restarting: once, not each poll)
                    polls_failing = True
                    log.warning("ban poll postponed: %s", problem.message)

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

    async def sweep_expired(self) -> int:
        """Delete expired messages and group entries: small transactions through the
        writer (sweep_batch rows per table each); how many went (at least)."""
        now, batch = self.clock(), self.config.sweep_batch
        total = 0
        while (deleted := await self.store.sweep(now, batch)) >= batch:
            total += deleted
        total += deleted
        if total:
            log.info("expiry sweep deleted %d rows or more", total)
        return total

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

    async def _sweep_stories_logged(self) -> None:
        n_stories, n_blobs = await self.sweep_stories()
        if n_stories or n_blobs:
            log.info("story sweep deleted %d stories and %d blobs", n_stories, n_blobs)

    async def _healthz(self) -> tuple[int, str, bytes]:
        status, body = await health_report(
            self.store, self.config.data, len(self.sessions), self._started
        )
        if self.stopping:
            status, body["status"] = 503, "stopping"
        if self.cluster is not None:
            # Reported, not failed on: without the bus, pushes from other nodes wait for
            # the store re-read that follows its return; moving clients would not help.
            body["bus"] = "connected" if self.cluster.bus.connected else "disconnected"
            body["nodes"] = len(self.cluster.nodes) + 1  # heard from lately, this one too
        if self.config.storage != "sqlite":
            body["leader"] = self.chores.leading  # this node runs the sweeps
        return status, "application/json", json.dumps(body).encode()

    async def _metrics(self) -> tuple[int, str, bytes]:
        deferred = sum(s.deferred_count for s in self.sessions)
        if self.cluster is not None:
            self.metrics.bus_rereads.set(self.cluster.gaps)
        return 200, CONTENT_TYPE, await self.metrics.render(self.store, deferred)

    async def shutdown(self) -> None:
        self.stopping = True
        await self.chores.close()
        if self.shared_limits is not None:
            await self.shared_limits.close()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._health is not None:
            await self._health.close()
        if self._ws is not None:
            self._ws.close(close_connections=False)  # stop accepting; keep the open ones
        for session in list(self.sessions):
            if session.subscription is not None:
                session.subscription.stop()
        self.audit.flush()  # the repeats of open windows, before the store closes
        await self.store.close()  # commits everything queued and resolves its futures
        if self.cluster is not None:
            await self.cluster.close()  # after the last commits' pushes were published
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
        self._release_data()
        log.info("relay stopped")

    def _release_data(self) -> None:
        if self._data_lock is not None:
            self._data_lock.release()
            self._data_lock = None

    # --- connections ------------------------------------------------------------------------

    async def _connection(self, conn: ServerConnection) -> None:
        # serve() makes every connection a RelayConnection (create_connection), but
        # types its handler's argument as the base class.
        assert isinstance(conn, RelayConnection)
        ws = conn
        request = ws.request
        address = client_address(ws.remote_address,
                                 request.headers if request is not None else None,
                                 self._proxies)
        if not self.addresses.add(address):  # others were admitted meanwhile
            await ws.close(CloseCode.TRY_AGAIN_LATER, "too many connections from this address")
            return
        session = Session(ws, self.config, self.store, self.hub, self.blobs,
                          guards=self.guards, audit=self.audit, address=address)
        session.metrics = self.metrics
        session.origins = self.origins
        self.sessions.add(session)
        self.metrics.connections.inc()
        self.metrics.connections_total.inc()
        try:
            while True:
                data = await ws.recv_frame()
                await session.slots.acquire()
                await self._receive(session, data)
        except ConnectionClosed:
            pass
        finally:
            self.metrics.connections.dec()
            self.addresses.remove(address)
            session.close()
            self.sessions.discard(session)

    def _wait(self, session: Session) -> float:
        """Take a token from the connection's and the identity's buckets: 0, or the
        seconds until the frame would be accepted (nothing taken from the identity's)."""
        wait = session.bucket.take()
        if not wait and session.user is not None:
            wait = self.user_buckets.take(session.user)
        return wait

    async def _refuse_rate(self, session: Session, data: str | bytes, wait: float) -> None:
        """Answer rate_limited (with retry_after) to a frame dropped unread."""
        rid = peek_id(data) if isinstance(data, bytes) else None
        await session.send(Error(
            id=rid, error=ErrorCode.RATE_LIMITED, retry_after=max(1, math.ceil(wait * 1000)),
            message=f"too many frames: retry in {wait:.3f} s"))

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
            if wait := self._wait(session):  # before decoding: refusing must be cheap
                self.metrics.error(str(ErrorCode.RATE_LIMITED))
                await self._refuse_rate(session, data, wait)
                return
            try:
                frame = decode_request(data)
            except ProtocolError:
                self.metrics.invalid_frame()
                raise
            self.metrics.frame(frame)
            rid = frame.id
            if (session.handle is None and session.user is not None
                    and self.config.registration == "invite-only"
                    and type(frame) is not Register and not isinstance(frame, LINKING)):
                raise ProtocolError(ErrorCode.INVITE_REQUIRED,
                                    "this relay is invite-only: register with an invite first")
            answer = await handlers.dispatch(session, frame)
            if answer is None:
                return
            if isinstance(answer, Later):
                session.defer(rid, answer)
                deferred = True
            else:
                await session.send(answer)
        except Exception as exc:
            if not isinstance(exc, ProtocolError):
                refused = storage_error(exc)  # e.g. a blob chunk on a full disk
                if refused is None:
                    log_it, dropped = self.log_budget.take()
                    if log_it:
                        log.error("handler failed (frame id %s)%s", rid,
                                  f"; {dropped} more failures not logged" if dropped else "",
                                  exc_info=exc)
                    refused = ProtocolError(ErrorCode.INTERNAL, "internal error")
                elif refused.code != ErrorCode.UNAVAILABLE:  # (an outage is logged once,
                    log.error("frame id %s refused: %s", rid, exc)  # by the writer)
                exc = refused
            if rid is None and isinstance(data, bytes):
                rid = peek_id(data)
            self.metrics.error(str(exc.code))
            await session.send(Error(id=rid, error=str(exc.code), message=exc.message,
                                     retry_after=exc.retry_after))
        finally:
            if not deferred:
                session.slots.release()


def run(config: Config) -> int:
    """Run a relay until it is told to stop; the process exit status."""
    setup_logging(config.log_level, config.log_format)
    # Nothing the relay writes is for other local users (relay/files.py sets the modes of
    # what it knows of; this covers the rest, e.g. SQLite's temporary files).
    os.umask(0o077)
    server = Server(config, clock=clock_from_environ(os.environ))
    # The relay allocates a few short-lived objects per frame and keeps few cycles: the
    # default collector (a young collection every 700 allocations, full ones walking every
    # module object) took ~20% of a saturated relay (bench.relay_throughput: 7.6-8.3k →
    # 9.5-10.0k msgs/s). Start-up objects go to the permanent generation; young
    # collections come every 50,000 allocations.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    loop_factory = event_loop_factory(config.event_loop)
    log.info("event loop: %s", "uvloop" if loop_factory is not None else "asyncio")
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(server.serve())
    return 0


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory for "uvloop" (and for "auto" when it is installed), None for
    asyncio's own. uvloop roughly halves the relay's per-frame cost (bench/)."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise OSError("event_loop = uvloop, but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop
