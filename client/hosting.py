"""Run `tenchat` commands inside the process that holds the home (the daemon, or the TUI).

A command arriving over the socket (``cli`` in ``client/daemon.py``) is the same typer
command a terminal runs — same parsing, same output, same errors — executed on a thread
of the host with three things routed to the caller instead of the host's process:

- **output**: ``sys.stdout``/``sys.stderr`` are replaced once by :class:`_Routed`, which
  writes to the current command's :class:`Invocation` (a context variable, so it follows
  the command onto the event loop) and to the real stream otherwise;
- **input**: ``sys.stdin`` likewise reads the text the caller sent (``-`` arguments);
- **the working directory**: every path parameter is resolved against the caller's
  directory (:func:`_in_caller_dir`), since a process has only one.

The command's coroutine runs on the host's event loop with the host's :class:`Client`
(``run()`` and ``with_client()`` in ``client/cli.py`` ask :func:`current` first). The host's
own loop receives for everyone (``client.run()``), so a command's ``client.sync()`` must not
open a second subscription on the shared connection: :func:`share` makes the client's
``sync`` a *guest* sync for everyone but that loop — wait until the host is online (or
fail at once if it is offline, as a direct sync would) and flush the outbox; with
``follow``, pass on the messages the host receives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import io
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Invocation", "current", "run_hosted", "share", "run_command", "caller_path",
           "GUEST_ONLINE_WAIT"]

T = TypeVar("T")

GUEST_ONLINE_WAIT = 10.0  # s a command's sync waits for the host to reach the relay

_CURRENT: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "tenchat_invocation", default=None)
_OWNER: contextvars.ContextVar[bool] = contextvars.ContextVar("tenchat_owner", default=False)


@dataclass
class Invocation:
    """One command run for a caller: where its output goes and what it reads."""

    client: Any
    loop: asyncio.AbstractEventLoop
    cwd: str
    write: Callable[[str, str], None]  # (stream name, text): thread-safe
    stdin: str = ""
    error: BaseException | None = None  # the failure run() turned into `error: ...`
    stdin_stream: io.StringIO = field(init=False)
    cancelled: bool = False
    running: concurrent.futures.Future[Any] | None = None

    def __post_init__(self) -> None:
        self.stdin_stream = io.StringIO(self.stdin)

    def cancel(self) -> None:
        """The caller left: stop the command's coroutine (and any it would start)."""
        self.cancelled = True
        if self.running is not None:
            self.running.cancel()


def current() -> Invocation | None:
    """The command being run for a caller in this thread or task, if any."""
    return _CURRENT.get()


def caller_path(name: str) -> str:
    """``name`` relative to the caller's working directory (the process's, run directly)."""
    inv = _CURRENT.get()
    return name if inv is None or os.path.isabs(name) else os.path.join(inv.cwd, name)


def run_hosted(inv: Invocation, coro: Coroutine[Any, Any, T]) -> T:
    """``run()`` of a hosted command: the coroutine runs on the host's loop (where its
    client lives); this thread waits. Its failure is kept for the RPC answer's code."""

    async def inside() -> T:
        _CURRENT.set(inv)
        return await coro

    if inv.cancelled:
        coro.close()
        raise asyncio.CancelledError
    future = inv.running = asyncio.run_coroutine_threadsafe(inside(), inv.loop)
    try:
        return future.result()
    except BaseException as exc:
        future.cancel()
        inv.error = exc
        raise


# --- one command ------------------------------------------------------------------------


_command: Any = None  # the click command of the whole app, built once
_command_lock = threading.Lock()


def _app_command() -> Any:
    global _command
    with _command_lock:
        if _command is None:
            import typer

            from .cli import EVERY_COMMAND, app

            app.registered_commands, app.registered_groups = EVERY_COMMAND
            _command = typer.main.get_command(app)
            _retarget_paths(_command)
    return _command


def _retarget_paths(command: Any) -> None:
    for param in command.params:
        if getattr(param.type, "name", None) == "path":  # click's Path (typer vendors click)
            param.type = _in_caller_dir(param.type)
    for sub in getattr(command, "commands", {}).values():
        _retarget_paths(sub)


def _in_caller_dir(inner: Any) -> Any:
    class InCallerDir(type(inner)):  # type: ignore[misc]
        def convert(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, str) and value != "-":
                value = caller_path(value)
            return super().convert(value, param, ctx)

    clone = InCallerDir.__new__(InCallerDir)
    clone.__dict__.update(inner.__dict__)
    return clone


def run_command(inv: Invocation, argv: list[str]) -> int:
    """Run ``tenchat ARGV`` for a caller on this (worker) thread; its exit status."""
    _install_routing()
    command = _app_command()
    ctx = contextvars.copy_context()

    def body() -> int:
        _CURRENT.set(inv)
        try:
            command.main(args=argv, prog_name="tenchat", standalone_mode=True)
        except SystemExit as exc:
            code = exc.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        return 0

    return ctx.run(body)


class _Routed(io.TextIOBase):
    """A standard stream that belongs to the current hosted command, if there is one."""

    def __init__(self, name: str, real: Any) -> None:
        self.name_ = name
        self.real = real

    def write(self, text: str) -> int:
        inv = _CURRENT.get()
        if inv is None:
            return int(self.real.write(text))
        if isinstance(text, bytes | bytearray):  # click's echo of bytes
            text = bytes(text).decode("utf-8", "replace")
        inv.write(self.name_, text)
        return len(text)

    def flush(self) -> None:
        if _CURRENT.get() is None:
            self.real.flush()

    def isatty(self) -> bool:
        return False if _CURRENT.get() is not None else bool(self.real.isatty())

    def readable(self) -> bool:
        return self.name_ == "stdin"

    def writable(self) -> bool:
        return self.name_ != "stdin"

    def read(self, size: int | None = -1) -> str:
        inv = _CURRENT.get()
        return inv.stdin_stream.read(size) if inv is not None else str(self.real.read(size))

    def readline(self, size: int = -1) -> str:  # type: ignore[override]
        inv = _CURRENT.get()
        return (inv.stdin_stream.readline(size) if inv is not None
                else str(self.real.readline(size)))

    def fileno(self) -> int:
        if _CURRENT.get() is not None:
            raise io.UnsupportedOperation("a hosted command's stream has no descriptor")
        return int(self.real.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "strict"


_installed = False


def _install_routing() -> None:
    global _installed
    with _command_lock:
        if not _installed:
            sys.stdout = _Routed("stdout", sys.stdout)
            sys.stderr = _Routed("stderr", sys.stderr)
            sys.stdin = _Routed("stdin", sys.stdin)
            _installed = True


# --- one receiver for the whole home -----------------------------------------------------


def share(client: Any) -> Callable[[Coroutine[Any, Any, T]], Coroutine[Any, Any, T]]:
    """Make ``client.sync`` a guest sync for everyone but the host's receive loop.

    Returns ``as_owner(coro)``: the host wraps its ``client.run()`` in it. An instance
    attribute shadows the method, so the feature services (which call ``client.sync()``
    themselves, e.g. polls) get the guest sync too.
    """
    from .connection import ConnectionLost
    from .events import CONNECTING, ONLINE, ConnectionChanged, MessageAdded

    own_sync = client.sync

    async def wait_online() -> None:
        """Until the host is online; at once if it is offline between retries (a command
        then works from the cache, or queues, as it would offline)."""
        if client.connection_state == ONLINE:
            return
        if client.connection_state != CONNECTING:
            raise ConnectionLost("the daemon is not connected to the relay")
        ready = asyncio.get_running_loop().create_future()

        def on(event: Any) -> None:
            if isinstance(event, ConnectionChanged) and event.state != CONNECTING \
                    and not ready.done():
                ready.set_result(event.state)

        drop = client.subscribe(on)
        try:
            state = await asyncio.wait_for(ready, GUEST_ONLINE_WAIT)
        except TimeoutError:
            state = None
        finally:
            drop()
        if state != ONLINE:
            raise ConnectionLost("the daemon is not connected to the relay")

    async def pass_on(on_messages: Any) -> int:
        """What the host receives from now on, as a following sync would get it."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        drop = client.subscribe(lambda e: queue.put_nowait(e.message)
                                if isinstance(e, MessageAdded) and not e.message.outgoing
                                else None)
        try:
            while True:
                rows = [await queue.get()]
                while not queue.empty():
                    rows.append(queue.get_nowait())
                if on_messages is not None:
                    result = on_messages(rows)
                    if asyncio.iscoroutine(result):
                        await result
        finally:
            drop()

    async def guest_sync(*, follow: bool = False, on_messages: Any = None) -> int:
        if _OWNER.get():
            return int(await own_sync(follow=follow, on_messages=on_messages))
        if follow:  # the host flushes and reconnects; a follower only listens
            return await pass_on(on_messages)
        await wait_online()
        await client.flush_outbox()
        return 0

    client.sync = guest_sync

    async def as_owner(coro: Coroutine[Any, Any, T]) -> T:
        _OWNER.set(True)
        return await coro

    return as_owner
