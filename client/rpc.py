"""JSON-RPC 2.0 over a Unix stream socket: the framing, the error codes and a server.

One JSON value per line (UTF-8, ``\\n``-terminated), both ways: a request, a batch (a
JSON array of requests), a response, or a notification (no ``id``). Lines make the
protocol usable from any language with a socket and a JSON parser (``examples/echo_bot.py``
is 40 lines of the standard library) and let a reader recover after a bad line: a line
that is not JSON gets a parse error and the connection keeps serving; a line longer than
:data:`MAX_REQUEST` is skipped to its end and answered with an invalid-request error.

Requests on one connection run concurrently (a ``subscribe`` or a following ``receive``
does not block a ``send`` behind it), at most :data:`MAX_IN_FLIGHT` at once (the
connection is not read further until one ends); their answers carry their ids. Closing the
connection cancels whatever it still has running.

This module knows nothing of tenchat's methods (``client/daemon.py`` has the table) and
imports nothing heavy: the command-line fast path (``client/launch.py``) uses its framing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_REQUEST", "MAX_IN_FLIGHT", "PARSE_ERROR", "INVALID_REQUEST", "METHOD_NOT_FOUND",
           "INVALID_PARAMS", "INTERNAL_ERROR", "TENCHAT_ERROR", "RpcError", "Call", "Handler",
           "RpcServer", "encode"]

log = logging.getLogger(__name__)

MAX_REQUEST = 1 << 20  # bytes in one request line; files travel as paths, never inline
MAX_IN_FLIGHT = 64  # requests one connection may have running; then it is read no further
_CHUNK = 1 << 16

# JSON-RPC 2.0's own codes, and one server code for tenchat's errors (docs/rpc.md).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
TENCHAT_ERROR = -32000  # data.code: the ErrorCode (common/errors.py) when there is one


class RpcError(Exception):
    """An error answer: ``{"code": code, "message": message, "data": data}``."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def encode(obj: Any) -> bytes:
    """One line of the protocol (no newline inside: json escapes them in strings)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


@dataclass
class Call:
    """One request being answered: its params, and a way to stream notifications to the
    connection it came on (``receive`` with ``follow``, ``cli`` output, ``subscribe``)."""

    params: dict[str, Any]
    notify: Callable[[str, dict[str, Any]], Awaitable[None]]
    session: Session


Handler = Callable[[Call], Awaitable[Any]]


@dataclass
class Session:
    """One client connection. ``closing`` is awaited by handlers that stream until the
    client goes away (``subscribe``); ``state`` holds per-connection things they keep."""

    closed: asyncio.Event = field(default_factory=asyncio.Event)
    state: dict[str, Any] = field(default_factory=dict)


class RpcServer:
    """Serves ``methods`` on connections handed to :meth:`serve` (asyncio streams)."""

    def __init__(self, methods: Mapping[str, Handler], *,
                 on_error: Callable[[BaseException], RpcError]) -> None:
        self.methods = methods
        self.on_error = on_error  # a handler's exception -> the error answered

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session()
        tasks: set[asyncio.Task[None]] = set()
        write_lock = asyncio.Lock()
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)

        async def send(obj: Any) -> None:
            async with write_lock:
                if writer.is_closing():
                    return
                writer.write(encode(obj))
                await writer.drain()

        async def notify(method: str, params: dict[str, Any]) -> None:
            await send({"jsonrpc": "2.0", "method": method, "params": params})

        try:
            async for line in _lines(reader):
                if line is None:
                    await send(_error(None, RpcError(
                        INVALID_REQUEST, f"request over {MAX_REQUEST} bytes")))
                    continue
                if not line.strip():
                    continue
                await slots.acquire()  # backpressure: a flood waits in the socket's buffer
                task = asyncio.ensure_future(self._answer(line, session, send, notify))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                task.add_done_callback(lambda _t: slots.release())
        except (ConnectionError, OSError):
            pass
        finally:
            session.closed.set()
            for task in list(tasks):
                task.cancel()
            for task in list(tasks):
                with contextlib.suppress(BaseException):
                    await task
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, line: bytes, session: Session,
                      send: Callable[[Any], Awaitable[None]],
                      notify: Callable[[str, dict[str, Any]], Awaitable[None]]) -> None:
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            await send(_error(None, RpcError(PARSE_ERROR, f"not JSON: {exc}")))
            return
        if isinstance(request, list):
            if not request:
                await send(_error(None, RpcError(INVALID_REQUEST, "an empty batch")))
                return
            answers = await asyncio.gather(
                *(self._one(r, Call({}, notify, session)) for r in request))
            batch = [a for a in answers if a is not None]
            if batch:
                await send(batch)
            return
        answer = await self._one(request, Call({}, notify, session))
        if answer is not None:
            await send(answer)

    async def _one(self, request: Any, call: Call) -> dict[str, Any] | None:
        """The answer to one request, or None for a notification (JSON-RPC: no answer)."""
        req_id = request.get("id") if isinstance(request, dict) else None
        if not isinstance(req_id, str | int | None) or isinstance(req_id, bool):
            req_id = None
        # Only a well-formed notification goes unanswered; anything else gets its error.
        answers = not isinstance(request, dict) or "id" in request
        try:
            method, params = _validate(request)
            handler = self.methods.get(method)
            if handler is None:
                raise RpcError(METHOD_NOT_FOUND, f"no method {method!r}")
            call.params = params
            result = await handler(call)
        except asyncio.CancelledError:
            raise
        except RpcError as exc:
            return _error(req_id, exc) if answers else None
        except Exception as exc:  # noqa: BLE001 — every failure becomes an answer
            error = self.on_error(exc)
            if error.code == INTERNAL_ERROR:
                log.exception("rpc method %r failed", request.get("method"))
            return _error(req_id, error) if answers else None
        if not answers:
            return None
        return {"jsonrpc": "2.0", "id": req_id, "result": result}


def _validate(request: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'a request is an object with "jsonrpc": "2.0"')
    method = request.get("method")
    if not isinstance(method, str):
        raise RpcError(INVALID_REQUEST, "the method must be a string")
    params = request.get("params", {})
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "params must be an object (named parameters)")
    return method, params


def _error(req_id: Any, exc: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": exc.to_json()}


async def _lines(reader: asyncio.StreamReader) -> Any:
    """Yield each line (without its newline); None in place of a line over MAX_REQUEST,
    which is read to its end and dropped, so the next line is served."""
    buf = bytearray()
    skipping = False
    while True:
        chunk = await reader.read(_CHUNK)
        if not chunk:
            if buf and not skipping:
                yield bytes(buf)
            return
        buf += chunk
        while True:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > MAX_REQUEST:
                    if not skipping:
                        skipping = True
                    buf.clear()
                break
            line = bytes(buf[:end])
            del buf[:end + 1]
            if skipping or len(line) > MAX_REQUEST:
                skipping = False
                yield None
            else:
                yield line
