"""The ``tenchat-relay`` command line: ``serve`` now, admin commands later.

Commands are thin: they build a Config, call the server, and turn the
project's own errors into one line on stderr and exit status 1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .config import ConfigError, load_config

__all__ = ["app", "main"]

app = typer.Typer(
    name="tenchat-relay",
    help="The tenchat relay: stores and forwards end-to-end encrypted messages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on. [127.0.0.1]")] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on; 0 picks a free one. [8765]")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Data directory. [the platform's user data dir]")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML config file (keys as the options).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Relay name clients sign into their auth. [localhost]")
    ] = None,
    max_frame: Annotated[
        int | None, typer.Option(help="Largest frame in bytes. [1048576]")
    ] = None,
    sync: Annotated[
        str | None, typer.Option(help="SQLite durability: full or normal. [full]")
    ] = None,
    max_blob: Annotated[
        int | None, typer.Option(help="Largest media blob in bytes. [52428800]")
    ] = None,
    blob_quota: Annotated[
        int | None, typer.Option(help="Blob bytes one identity may store. [1073741824]")
    ] = None,
    story_sweep_interval: Annotated[
        int | None, typer.Option(help="Seconds between sweeps of expired stories. [3600]")
    ] = None,
    sweep_batch: Annotated[
        int | None, typer.Option(help="Expired rows deleted per transaction. [500]")
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning or error. [info]")
    ] = None,
) -> None:
    """Run the relay until SIGTERM or SIGINT.

    Settings: flags > TENCHAT_RELAY_* environment > --config file > defaults.
    """
    from .server import run  # keep `--help` fast

    flags = {
        "host": host,
        "port": port,
        "data": data,
        "name": name,
        "max_frame": max_frame,
        "sync": sync,
        "max_blob": max_blob,
        "blob_quota": blob_quota,
        "story_sweep_interval": story_sweep_interval,
        "sweep_batch": sweep_batch,
        "log_level": log_level,
    }
    try:
        cfg = load_config(flags, os.environ, config)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    try:
        code = run(cfg)
    except OSError as exc:
        raise fail(f"cannot start the relay: {exc.strerror or exc}") from None
    except RuntimeError as exc:  # e.g. a database from a newer relay
        raise fail(str(exc)) from None
    raise typer.Exit(code)


@app.callback()
def _root() -> None:
    """The tenchat relay."""


def main() -> None:
    app()
