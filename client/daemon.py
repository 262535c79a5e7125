"""The home's one owner: a relay connection and a JSON-RPC socket for scripts and bots.

:class:`HomeServer` serves an unlocked :class:`Client` on ``HOME/rpc.sock`` (JSON-RPC 2.0,
one JSON value a line: ``client/rpc.py``; every method in docs/rpc.md). ``tenchat daemon``
(``client/cli_daemon.py``) runs one in the foreground; the TUI runs one while it is open.
Either way one process owns the home — it holds ``flock`` on ``HOME/rpc.lock`` for its
lifetime, so a second daemon or TUI is refused (:class:`HomeBusy`) — and `tenchat`
commands go through its socket (``client/launch.py``): one receiver, one relay
connection, and no script waiting for the passphrase or the key derivation.

The socket is created with mode 0600 (under ``umask 0o177``, so never briefly wider) and
each connection's peer uid is checked (``SO_PEERCRED``): only the home's user may drive
it. Each transaction still takes the home's lock (``client/homelock.py``), so a command
run directly meanwhile (started before the daemon, or with the passphrase) stays safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import socket
import struct
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..common.errors import TenchatError
from .home_socket import SOCKET_NAME, _address, command_of, runs_here
from .hosting import Invocation, run_command
from .rpc import INTERNAL_ERROR, INVALID_PARAMS, TENCHAT_ERROR, Call, RpcError, RpcServer, Session
from .rpc_methods import METHODS, CliMethod, Params

__all__ = ["HomeServer", "HomeBusy", "LOCK_NAME", "SOCKET_NAME", "OWN_METHODS", "EVENT_TYPES"]

log = logging.getLogger(__name__)

LOCK_NAME = "rpc.lock"
OWN_METHODS = ("subscribe", "unsubscribe", "cli")  # besides the CLI-shaped METHODS
EVENT_TYPES = ("message", "status", "typing", "presence", "connection", "message_changed",
               "conversation_changed", "story_viewed", "devices_changed")


class HomeBusy(TenchatError):
    """Another daemon or TUI already owns this home."""


def rpc_error(exc: BaseException) -> RpcError:
    """A handler's exception as the answer's error: tenchat's errors carry their code."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, TenchatError):
        code = getattr(exc, "code", None)
        message = getattr(exc, "message", None) or str(exc)
        return RpcError(TENCHAT_ERROR, message,
                        {"code": str(code) if code is not None else None,
                         "type": type(exc).__name__})
    return RpcError(INTERNAL_ERROR, f"unexpected {type(exc).__name__}")


class HomeServer:
    """``await server.start()`` … ``await server.close()``: the socket of one home."""

    def __init__(self, client: Any, home: Path) -> None:
        self.client = client
        self.home = home.absolute()
        self.path = self.home / SOCKET_NAME
        self._lock_fd: int | None = None
        self._server: asyncio.AbstractServer | None = None
        self._rpc = RpcServer(self._methods(), on_error=rpc_error)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        fd = os.open(self.home / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise HomeBusy(f"a tenchat daemon or TUI already serves {self.home} "
                           f"(its socket: {self.path})") from None
        self._lock_fd = fd
        try:
            self.path.unlink(missing_ok=True)  # a dead owner's socket: we hold the lock now
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address, dir_fd = _address(self.path)
            old_umask = os.umask(0o177)
            try:
                sock.bind(address)
            finally:
                os.umask(old_umask)
                if dir_fd is not None:
                    os.close(dir_fd)
            os.chmod(self.path, 0o600)
            self._server = await asyncio.start_unix_server(self._accept, sock=sock)
        except BaseException:
            self._release()
            raise
        log.info("serving %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self.path.unlink(missing_ok=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            self._server = None
        self._release()

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid():  # the mode already says so; a second check costs nothing
            log.warning("refused a connection from uid %d", uid)
            writer.close()
            return
        await self._rpc.serve(reader, writer)

    # --- methods ------------------------------------------------------------------------

    def _methods(self) -> dict[str, Callable[[Call], Awaitable[Any]]]:
        table: dict[str, Callable[[Call], Awaitable[Any]]] = {
            name: self._cli_method(method) for name, method in METHODS.items()}
        table.update(subscribe=self._subscribe, unsubscribe=self._unsubscribe, cli=self._cli)
        return table

    async def run_cli(self, argv: list[str], *, cwd: str, stdin: str,
                      output: Callable[[str, str], None]) -> tuple[int, Invocation]:
        """Run ``tenchat ARGV`` for a caller; ``output(stream, text)`` gets what it prints,
        in order, on this loop. Cancelled (the caller left): the command is cancelled."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()

        def write(stream: str, text: str) -> None:
            loop.call_soon_threadsafe(output, stream, text)

        def finish(code: int) -> None:
            if not done.done():
                done.set_result(code)

        inv = Invocation(self.client, loop, cwd, write, stdin)

        def work() -> None:
            try:
                code = run_command(inv, argv)
            except BaseException as exc:  # noqa: BLE001 — cancelled, or a bug: an answer
                if not isinstance(exc, asyncio.CancelledError):
                    log.error("command %s failed", argv[:2], exc_info=exc)
                code = 1
            loop.call_soon_threadsafe(finish, code)

        threading.Thread(target=work, name="tenchat-command", daemon=True).start()
        try:
            return await asyncio.shield(done), inv
        except asyncio.CancelledError:
            inv.cancel()
            raise

    async def _cli(self, call: Call) -> dict[str, int]:
        p = Params(call.params)
        argv = p.texts("argv")
        if runs_here(argv, *command_of(argv)):  # the TUI, init, a prompt: not in here
            raise RpcError(INVALID_PARAMS, "that command runs in the caller's process "
                           "(the TUI, init, demo, daemon, or one that may prompt)")
        cwd = p.opt_text("cwd") or str(self.home)
        if not os.path.isabs(cwd):
            raise RpcError(INVALID_PARAMS, "cwd must be an absolute path")
        outbound = _Outbound(call)
        try:
            code, _inv = await self.run_cli(
                argv, cwd=cwd, stdin=p.opt_text("stdin") or "",
                output=lambda s, t: outbound.put("cli.output", {"stream": s, "text": t}))
            await outbound.drain()
        finally:
            outbound.cancel()
        return {"exit": code}

    def _cli_method(self, method: CliMethod) -> Callable[[Call], Awaitable[Any]]:
        async def handler(call: Call) -> Any:
            params = Params(call.params)
            argv = ["--json", *method.argv(params)]
            follow = method.streams and params.flag("follow")
            out: list[str] = []
            err: list[str] = []
            partial = [""]
            outbound = _Outbound(call)

            def output(stream: str, text: str) -> None:
                if stream != "stdout":
                    err.append(text)
                    return
                if not follow:
                    out.append(text)
                    return
                *lines, partial[0] = (partial[0] + text).split("\n")
                for line in lines:
                    if line:
                        outbound.put("message", json.loads(line))

            try:
                code, inv = await self.run_cli(argv, cwd=str(self.home), stdin="-",
                                               output=output)
                await outbound.drain()
            finally:
                outbound.cancel()
            if code != 0:
                raise _failure(code, inv.error, "".join(err))
            objects = [json.loads(line) for line in "".join(out).splitlines() if line]
            if method.many:
                return objects
            return objects[0] if objects else None

        return handler

    async def _subscribe(self, call: Call) -> dict[str, Any]:
        p = Params(call.params)
        wanted = p.texts("events", required=False) or list(EVENT_TYPES)
        unknown = sorted(set(wanted) - set(EVENT_TYPES))
        if unknown:
            raise RpcError(INVALID_PARAMS, f"no such event: {', '.join(unknown)}")
        session = call.session
        _stop(session)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        drop = self.client.subscribe(queue.put_nowait)

        async def forward() -> None:
            from .events_json import event_json

            while True:
                event = await queue.get()
                obj = await event_json(self.client, event)
                if obj is not None and obj["type"] in wanted:
                    await call.notify("event", obj)

        task = asyncio.ensure_future(forward())
        session.state["subscription"] = (task, drop)
        asyncio.ensure_future(_stop_when_closed(session))
        return {"events": wanted}

    async def _unsubscribe(self, call: Call) -> dict[str, bool]:
        return {"stopped": _stop(call.session)}


class _Outbound:
    """Notifications to one caller, written in order by one task (the command's output
    arrives from its thread faster than the socket may take it)."""

    def __init__(self, call: Call) -> None:
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._send(call))

    async def _send(self, call: Call) -> None:
        while (item := await self.queue.get()) is not None:
            await call.notify(*item)

    def put(self, method: str, params: dict[str, Any]) -> None:
        self.queue.put_nowait((method, params))

    async def drain(self) -> None:
        """Until everything put so far is written."""
        self.queue.put_nowait(None)
        await self.task

    def cancel(self) -> None:
        self.task.cancel()


def _stop(session: Session) -> bool:
    current = session.state.pop("subscription", None)
    if current is None:
        return False
    task, drop = current
    drop()
    task.cancel()
    return True


async def _stop_when_closed(session: Session) -> None:
    await session.closed.wait()
    _stop(session)


def _failure(code: int, error: BaseException | None, stderr: str) -> RpcError:
    """The answer to a CLI-shaped method whose command failed: its exception's code when
    the core raised one, else the command's own `error:` line."""
    message = stderr.strip().removeprefix("error: ").strip() or f"exit status {code}"
    if code == 2:  # a usage mistake: what the params said
        return RpcError(INVALID_PARAMS, message)
    if error is not None and isinstance(error, TenchatError):
        answer = rpc_error(error)
        answer.message = message
        return answer
    return RpcError(TENCHAT_ERROR, message, {"code": None, "type": None})
