"""`tenchat daemon`: own the home in the foreground and serve it on HOME/rpc.sock.

Thin like the rest of the CLI: unlock, start the :class:`~.daemon.HomeServer`, receive
until SIGTERM or SIGINT (both end it cleanly: the socket is removed, the cache closed).
deploy/tenchat-daemon.service runs it as a systemd user unit.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import typer

from .cli import Options, app, open_client, run, say


@app.command()
def daemon(ctx: typer.Context) -> None:
    """Own this home: stay connected and serve JSON-RPC on HOME/rpc.sock (docs/rpc.md);
    other tenchat commands then go through it. Runs until SIGTERM or Ctrl-C."""
    opts: Options = ctx.obj
    run(serve(opts))


async def serve(opts: Options) -> None:
    from .daemon import HomeServer
    from .hosting import share

    client: Any = await open_client(opts)
    server = HomeServer(client, opts.home)
    try:
        await server.start()
        as_owner = share(client)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        say(f"tenchat daemon: @{client.handle} on {client.relay_url}, serving {server.path}",
            err=True)
        receiving = asyncio.ensure_future(as_owner(client.run()))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        receiving.cancel()
        stopping.cancel()
        if receiving.done() and not receiving.cancelled() and receiving.exception():
            raise receiving.exception()  # type: ignore[misc]
    finally:
        await server.close()
        await client.close()
