"""The ``tenchat-relay`` command line: ``serve``, and ``admin ...`` on a data directory.

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

# Plain help and usage errors, as `tenchat` has: one style for both programs, readable
# in a log, a pipe or a screen reader, and no boxes drawn by rich (tests/test_cli_style.py).
app = typer.Typer(
    name="tenchat-relay",
    help="The tenchat relay: stores and forwards end-to-end encrypted messages.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"tenchat-relay {version('tenchat')}")
        raise typer.Exit()


@app.callback()
def main_options(
    show_version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_version,
        help="Print the version and exit.")] = False,
) -> None:
    """The tenchat relay: stores and forwards end-to-end encrypted messages."""


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
    storage: Annotated[
        str | None, typer.Option(
            help="sqlite (in the data directory), or postgresql://USER@HOST/DB, which "
                 "several relay nodes may share. [sqlite]")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML config file (keys as the options).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Relay name clients show and pin. [localhost]")
    ] = None,
    origins: Annotated[
        str | None, typer.Option(
            help="Comma-separated URLs clients dial (ws[s]://host[:port]); auth for other "
                 "origins is refused. [the listening URL, and wss://NAME]")
    ] = None,
    max_frame: Annotated[
        int | None, typer.Option(help="Largest frame in bytes. [1048576]")
    ] = None,
    sync: Annotated[
        str | None, typer.Option(help="SQLite durability: full or normal. [full]")
    ] = None,
    writer: Annotated[
        str | None, typer.Option(help="SQLite writes in a process of their own or a thread"
                                 " of the relay's: process or thread. [process]")
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
    log_format: Annotated[
        str | None, typer.Option(help="Log lines as text or json. [text]")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Port for /healthz and /metrics; 0: off. [0]")
    ] = None,
    metrics_host: Annotated[
        str | None, typer.Option(help="Address for /healthz and /metrics. [127.0.0.1]")
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="PEM certificate chain: serve wss:// (with --tls-key).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    rate_conn: Annotated[
        int | None, typer.Option(help="Frames/s per connection, 0 = no limit. [10000]")
    ] = None,
    burst_conn: Annotated[
        int | None, typer.Option(help="Burst of frames per connection. [20000]")
    ] = None,
    rate_user: Annotated[
        int | None, typer.Option(help="Frames/s per identity, 0 = no limit. [20000]")
    ] = None,
    burst_user: Annotated[
        int | None, typer.Option(help="Burst of frames per identity. [40000]")
    ] = None,
    ip_conn_max: Annotated[
        int | None, typer.Option(help="Open connections per client address, 0 = no cap. [256]")
    ] = None,
    ip_conn_exempt: Annotated[
        str | None, typer.Option(help="Addresses without a cap, commas. [127.0.0.1,::1]")
    ] = None,
    queue_max: Annotated[
        int | None, typer.Option(help="Queued messages per recipient. [100000]")
    ] = None,
    queue_bytes: Annotated[
        int | None, typer.Option(help="Queued message bytes per recipient. [1073741824]")
    ] = None,
    auth_timeout: Annotated[
        int | None, typer.Option(help="Seconds to authenticate before being closed. [30]")
    ] = None,
    send_timeout: Annotated[
        int | None, typer.Option(help="Seconds a client may not read before being cut. [30]")
    ] = None,
    write_limit: Annotated[
        int | None, typer.Option(help="Send buffer per connection in bytes. [65536]")
    ] = None,
    registration: Annotated[
        str | None, typer.Option(help="open or invite-only. [open]")
    ] = None,
    admins: Annotated[
        str | None, typer.Option(help="Admin identities: hex keys or @handles, commas.")
    ] = None,
    moderators: Annotated[
        str | None, typer.Option(help="Moderator identities: hex keys or @handles, commas.")
    ] = None,
    audit_ip: Annotated[
        bool | None,
        typer.Option("--audit-ip/--no-audit-ip", help="Record client IPs in the audit log."),
    ] = None,
    ban_poll: Annotated[
        int | None, typer.Option(help="Seconds between looks for new bans. [2]")
    ] = None,
    bus: Annotated[
        str | None, typer.Option(
            help="Bus between relay nodes sharing a store: nats://HOST:PORT. [none]")
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
        "storage": storage,
        "name": name,
        "origins": origins,
        "max_frame": max_frame,
        "sync": sync,
        "writer": writer,
        "max_blob": max_blob,
        "blob_quota": blob_quota,
        "story_sweep_interval": story_sweep_interval,
        "sweep_batch": sweep_batch,
        "log_level": log_level,
        "log_format": log_format,
        "metrics_port": metrics_port,
        "metrics_host": metrics_host,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
        "rate_conn": rate_conn,
        "burst_conn": burst_conn,
        "rate_user": rate_user,
        "burst_user": burst_user,
        "ip_conn_max": ip_conn_max,
        "ip_conn_exempt": ip_conn_exempt,
        "queue_max": queue_max,
        "queue_bytes": queue_bytes,
        "auth_timeout": auth_timeout,
        "send_timeout": send_timeout,
        "write_limit": write_limit,
        "registration": registration,
        "admins": admins,
        "moderators": moderators,
        "audit_ip": audit_ip,
        "ban_poll": ban_poll,
        "bus": bus,
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


DataOption = Annotated[
    Path | None, typer.Option(help="Data directory. [as serve: flag, env, config, default]")
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML config file (keys as serve's options).")
]


def _data_dir(data: Path | None, config: Path | None) -> Path:
    try:
        return load_config({"data": data}, os.environ, config).data
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _postgres(data: Path | None, config: Path | None) -> str | None:
    """The PostgreSQL URL the settings name as ``storage``; None for SQLite."""
    try:
        storage = load_config({"data": data}, os.environ, config).storage
    except ConfigError as exc:
        raise fail(str(exc)) from None
    return None if storage == "sqlite" else storage


def _pg_backup(action: str, path: Path, url: str) -> None:
    """backup / restore on PostgreSQL (relay/storage/postgres/backup.py)."""
    import asyncio

    from .storage.factory import storage_label

    try:
        from .storage.postgres import backup as pg
    except ImportError as exc:
        raise fail(f"{action} needs {exc.name}: pip install 'tenchat[cluster]'") from None
    run = pg.backup(url, path) if action == "backup" else pg.restore(path, url)
    try:
        report = asyncio.run(run)
    except (pg.BackupError, OSError) as exc:
        raise fail(str(exc)) from None
    where = storage_label(url)
    done = (f"backed up {where} to {report.path}" if action == "backup"
            else f"restored {path} into {where}")
    typer.echo(f"{done}: schema {report.schema_version}, {report.messages} queued messages,"
               f" {report.blobs} blobs ({report.blob_bytes} bytes)")


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="New or empty directory for the backup.")],
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Back up the database and blobs, consistently, while the relay runs."""
    if (url := _postgres(data, config)) is not None:
        return _pg_backup("backup", dest, url)
    from .storage.sqlite.backup import BackupError, DatabaseError
    from .storage.sqlite.backup import backup as run_backup

    source = _data_dir(data, config)
    try:
        report = run_backup(source, dest)
    except BackupError as exc:
        raise fail(str(exc)) from None
    except (OSError, DatabaseError) as exc:
        raise fail(f"backup failed: {exc}") from None
    typer.echo(
        f"backed up {source} to {report.path}: schema {report.schema_version},"
        f" {report.messages} queued messages, {report.blobs} blobs ({report.blob_bytes} bytes)"
    )


@app.command()
def restore(
    src: Annotated[Path, typer.Argument(help="A directory made by `tenchat-relay backup`.")],
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Restore a backup into an empty data directory (the relay stopped), or with
    PostgreSQL storage into an empty database."""
    if (url := _postgres(data, config)) is not None:
        return _pg_backup("restore", src, url)
    from .storage.sqlite.backup import BackupError, DatabaseError
    from .storage.sqlite.backup import restore as run_restore

    target = _data_dir(data, config)
    try:
        report = run_restore(src, target)
    except BackupError as exc:
        raise fail(str(exc)) from None
    except (OSError, DatabaseError) as exc:
        raise fail(f"restore failed: {exc}") from None
    typer.echo(
        f"restored {src} into {target}: schema {report.schema_version},"
        f" {report.messages} queued messages, {report.blobs} blobs"
    )


@app.command("migrate-store")
def migrate_store(
    to: Annotated[str, typer.Option(
        "--to", metavar="URL", help="postgresql://USER@HOST/DB: an empty database.")],
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Move a stopped SQLite relay's data (and blob files) into PostgreSQL, verified."""
    import asyncio

    from .datalock import DataDirLock
    from .storage.factory import storage_label

    source = _data_dir(data, config)
    try:
        url = load_config({"storage": to}, {}).storage
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if url == "sqlite":
        raise fail("--to names the PostgreSQL database to move the data to")
    try:
        from .storage.postgres.importer import MigrateError, import_sqlite
    except ImportError as exc:
        raise fail(f"migrate-store needs {exc.name}: pip install 'tenchat[cluster]'") from None
    lock = DataDirLock(source)
    try:
        lock.acquire()  # no relay may write the data meanwhile
        try:
            report = asyncio.run(import_sqlite(source, url))
        finally:
            lock.release()
    except OSError as exc:  # the data directory's lock: a relay is running on it
        raise fail(str(exc)) from None
    except MigrateError as exc:
        raise fail(str(exc)) from None
    for table, rows in report.tables.items():
        typer.echo(f"{table:<18} {rows:>10} rows, count and checksum verified")
    typer.echo(f"moved {source} to {storage_label(url)}: {sum(report.tables.values())} rows"
               f" in {len(report.tables)} tables, {report.blobs} blobs ({report.blob_bytes}"
               f" bytes, each hashing to its id), {report.missing_blobs} blob files missing;"
               f" serve with --storage {storage_label(url)}")


from . import cli_admin  # noqa: E402, F401  (registers `admin` on `app`)


def main() -> None:
    app()
