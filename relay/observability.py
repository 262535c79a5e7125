"""What an operator watches: the /healthz and /metrics HTTP endpoint and JSON logs.

The endpoint is a separate plain-HTTP listener (``metrics_port``, off by default, on
127.0.0.1 by default) so that it can be firewalled apart from the WebSocket port.
It speaks just enough HTTP/1.1 for probes and Prometheus: GET, one answer, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

__all__ = ["HealthEndpoint", "JsonFormatter", "setup_logging"]

log = logging.getLogger("tenchat.relay.observability")

_PROBE_TIMEOUT: Final = 5.0  # seconds a health probe's write may take
_REQUEST_TIMEOUT: Final = 10.0
_MAX_REQUEST: Final = 8192  # bytes of request line and headers read

Route = Callable[[], Awaitable[tuple[int, str, bytes]]]


class HealthEndpoint:
    """An HTTP listener answering ``GET /healthz`` and ``GET /metrics``."""

    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        self.host = host
        self.port = port  # the bound port once started
        self.routes = routes
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_TIMEOUT)
            if len(head) > _MAX_REQUEST:
                raise ValueError("request too large")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            path = target.split("?", 1)[0]
            route = self.routes.get(path)
            if method not in ("GET", "HEAD"):
                status, ctype, body = 405, "text/plain", b"method not allowed\n"
            elif route is None:
                status, ctype, body = 404, "text/plain", b"not found\n"
            else:
                try:
                    status, ctype, body = await route()
                except Exception:
                    log.exception("%s failed", path)
                    status, ctype, body = 500, "text/plain", b"internal error\n"
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed",
                      500: "Internal Server Error", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (ValueError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError):
            pass  # a broken or slow probe: just close
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def health_report(
    store: Any, data_dir: Any, connections: int, started: float
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of /healthz: 200 if a write commits, 503 otherwise."""
    writable, problem = True, None
    try:
        await asyncio.wait_for(asyncio.shield(store.probe()), _PROBE_TIMEOUT)
    except Exception as exc:  # storage_full, unavailable (stopping), a timeout
        writable, problem = False, str(exc) or type(exc).__name__
    try:
        free: int | None = shutil.disk_usage(data_dir).free
    except OSError:
        free = None
    body = {
        "status": "ok" if writable else "degraded",
        "store": {"writable": writable, "error": problem,
                  "write_queue": store.write_queue_depth},
        "disk_free_bytes": free,
        "connections": connections,
        "uptime_seconds": round(time.monotonic() - started, 1),
    }
    return (200 if writable else 503), body


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, msg, and exc if any.

    Only the formatted message is written: the relay never puts frame bodies, keys or
    signatures in a log message, and no record attribute is dumped wholesale."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, fmt: str) -> None:
    """Logging to stderr, as text or as JSON lines (``log_format``)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # websockets logs failed handshakes with the peer's bytes; keep it at warnings.
    logging.getLogger("websockets").setLevel(max(root.level, logging.WARNING))
    # asyncpg's pool logs a traceback at every reconnect try while PostgreSQL is down;
    # the store's writer logs the outage once, and once more when it is over.
    logging.getLogger("asyncpg.pool").setLevel(max(root.level, logging.ERROR))
