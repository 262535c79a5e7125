"""The relay's configuration: one frozen :class:`Config`, built once and passed down.

Each setting comes from, in this order of precedence: a command-line flag, an
environment variable ``TENCHAT_RELAY_<NAME>``, the TOML file given by
``--config`` (or ``TENCHAT_RELAY_CONFIG``), then the default below.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import platformdirs

from tenchat.common.errors import TenchatError

__all__ = ["Config", "ConfigError", "load_config", "ENV_PREFIX", "default_data_dir",
           "accepted_origins"]

ENV_PREFIX: Final = "TENCHAT_RELAY_"
MiB: Final = 1024 * 1024

# Handles a newcomer could use to pass for the relay's staff; only admins may take them.
RESERVED_HANDLES: Final = (
    "abuse", "admin", "administrator", "help", "helpdesk", "hostmaster", "info", "mod",
    "moderator", "noreply", "official", "operator", "postmaster", "relay", "root",
    "security", "staff", "support", "sysadmin", "system", "tenchat", "webmaster",
)


class ConfigError(TenchatError):
    """A setting is missing, unknown or out of range; the message names it."""


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("tenchat-relay", appauthor=False))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8765  # 0 picks a free port
    data: Path = dataclasses.field(default_factory=default_data_dir)
    # Where the relay keeps its state: "sqlite" (DATA/relay.sqlite3 and DATA/blobs, one
    # relay) or "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB" (blobs too; shared by
    # several relay nodes, relay/storage/postgres).
    storage: str = "sqlite"
    # The relay's name: clients show it and pin it per relay URL on first use (a change
    # makes them refuse the relay until the user accepts it), so keep it stable.
    name: str = "localhost"
    # The URLs clients dial (scheme://host[:port]); a client signs the one it dialled into
    # its auth, and auth for any other origin is refused. Empty: see accepted_origins().
    origins: tuple[str, ...] = ()
    max_frame: int = MiB  # largest frame answered normally; larger ones get too_large
    otk_low: int = 20  # push prekeys_low when a fetch leaves fewer one-time prekeys than this
    otk_max: int = 500  # one-time prekeys kept per identity; extra ones are dropped
    # "full": every commit is fsynced (nothing acknowledged is lost on power loss);
    # "normal": WAL without fsync per commit (survives a crash of the process, not of the OS).
    sync: str = "full"
    batch_max: int = 2000  # writes per group commit
    # SQLite: "process" runs the write transactions in a process of their own (its own
    # GIL; docs/performance.md), "thread" in a thread of the relay's process.
    writer: str = "process"
    # "auto": uvloop when it is installed (the default install has it), else asyncio's own.
    event_loop: str = "auto"
    live_buffer: int = 1000  # live pushes buffered per subscribed connection before a re-drain
    page_size: int = 256  # messages per page when draining a queue
    inflight_max: int = 512  # unanswered requests per connection before it stops reading
    sweep_interval: int = 60  # seconds between sweeps deleting expired messages
    sweep_batch: int = 500  # expired rows deleted per transaction (per table)
    story_sweep_interval: int = 3600  # seconds between sweeps deleting expired stories
    max_blob: int = 50 * MiB  # largest media blob (ciphertext bytes); larger ones get too_large
    blob_quota: int = 1024 * MiB  # blob bytes one identity may store (uploads in progress count)
    log_level: str = "info"
    log_format: str = "text"  # "text" for people, "json": one JSON object per line
    # Observability: /healthz and /metrics over plain HTTP on their own port (0: off).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    # Retention: undelivered messages and group log entries older than this many days are
    # deleted (0: kept until delivered); unfinished blob uploads after upload_expiry_hours.
    retention_days: int = 30
    upload_expiry_hours: int = 24
    # --- transport and limits (relay/limits.py) ---
    tls_cert: Path | None = None  # PEM certificate chain: with tls_key, serve wss:// directly
    tls_key: Path | None = None  # PEM private key of tls_cert
    rate_conn: int = 10_000  # frames per second one connection may send (0 = no limit)
    burst_conn: int = 20_000  # frames one connection may send at once above rate_conn
    rate_user: int = 20_000  # frames per second one identity may send, all connections
    burst_user: int = 40_000  # frames one identity may send at once above rate_user
    ip_conn_max: int = 256  # open connections per client address (0 = no cap)
    # Addresses the cap does not apply to: loopback is local tools, benchmarks, or a
    # reverse proxy on the same machine (where the address says nothing about the client).
    ip_conn_exempt: tuple[str, ...] = ("127.0.0.1", "::1")
    # Reverse proxies whose X-Forwarded-For header names the client (relay/limits.py,
    # client_address): with these set, every per-address limit and the audit log see the
    # client's address instead of the proxy's. Empty: the header is never read.
    forwarded_allow: tuple[str, ...] = ()
    queue_max: int = 100_000  # queued messages per recipient; sends past it get queue_full
    queue_bytes: int = 1024 * MiB  # queued body bytes per recipient; past it: queue_full
    auth_timeout: int = 30  # seconds a connection may stay unauthenticated before it is closed
    send_timeout: int = 30  # seconds a full send buffer may not go down (then the reader is cut)
    write_limit: int = 64 * 1024  # bytes buffered per connection before a send waits
    # --- registration, roles and audit (relay/admin.py) ---
    registration: str = "open"  # "open" or "invite-only" (a handle needs an invite code)
    admins: tuple[str, ...] = ()  # identities (hex public key or @handle) with the admin role
    moderators: tuple[str, ...] = ()  # identities with the moderator role
    audit_ip: bool = False  # record client IP addresses in the audit log
    ban_poll: int = 2  # seconds between looks for bans made by `tenchat-relay admin`
    # --- abuse of the unauthenticated and the new (issue 12; docs/protocol.md §Limits) ---
    auth_fail_max: int = 3  # failed auths on one connection, then it is closed
    auth_fail_rate: int = 20  # failed auths per minute per address (0 = no limit)
    # Failures from one address with the same action and reason within this many seconds
    # are one audit row with a count.
    audit_window: int = 60
    audit_retention_days: int = 90  # audit rows older than this are deleted (0: kept)
    bundle_rate: int = 60  # prekey bundles one identity may fetch per minute (0 = no limit)
    bundle_burst: int = 300  # ... at once, above bundle_rate
    # sealed_send (docs/protocol.md §5.10): per recipient, and per sending address, per minute
    sealed_rate: int = 1200
    sealed_address_rate: int = 1200
    # Presence watch lists one identity may send per minute (each looks up to 1,024
    # contacts in the store), burst as many; 0 = no limit.
    watch_rate: int = 60
    # One-time prekeys handed out per target per hour (burst as many); past it a bundle
    # comes without one (X3DH works without it), so nobody can drain a victim's prekeys.
    otk_rate: int = 100
    # Addresses the per-address limits on new identities, handle registrations and the
    # proof-of-work below do not apply to (loopback: local tools, tests, benchmarks).
    limit_exempt: tuple[str, ...] = ("127.0.0.1", "::1")
    ident_rate: int = 20  # new identities per hour per address (0 = no limit)
    handle_rate: int = 10  # handle registrations per hour per address (0 = no limit)
    register_pow: int = 20  # proof-of-work bits asked for a handle registration (0: off)
    reserved_handles: tuple[str, ...] = RESERVED_HANDLES  # only admins may register these
    queue_share: int = 20  # percent of queue_max and queue_bytes one sender may fill
    reactions_max: int = 3  # reactions one author may have on one post
    # --- several relay nodes (relay/bus.py, relay/cluster.py) ---
    # The bus between nodes sharing one store: "nats://HOST:PORT" ("": none, one node).
    bus: str = ""

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def max_size_ceiling(self) -> int:
        """The hard WebSocket message limit: above it the connection is closed with 1009."""
        return max(8 * self.max_frame, self.max_frame + MiB)

    @property
    def db_path(self) -> Path:
        return self.data / "relay.sqlite3"

    @property
    def blob_dir(self) -> Path:
        return self.data / "blobs"


def _int(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, str):
            value = int(value.strip(), 10)
        if not isinstance(value, int):
            raise ValueError("expected an integer")
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return value

    return parse


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    return Path(_str(value)).expanduser()


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _str(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _identities(value: Any) -> tuple[str, ...]:
    """A list of identities: a TOML array, or a comma-separated string (flag, env)."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value if v.strip()]
    else:
        raise ValueError("expected a list of hex public keys or @handles")
    out = []
    for item in items:
        if item.startswith("@"):
            out.append(item.lower())
            continue
        try:
            if len(bytes.fromhex(item)) != 32:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"{item!r} is neither a 64-digit hex public key nor an @handle"
            ) from None
        out.append(item.lower())
    return tuple(out)


def _addresses(value: Any) -> tuple[str, ...]:
    """IP addresses: a TOML array, or a comma-separated string (flag, env); may be empty."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value if v.strip()]
    else:
        raise ValueError("expected a list of IP addresses")
    try:
        return tuple(str(ipaddress.ip_address(item)) for item in items)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def _str_items(value: Any, what: str) -> list[str]:
    """A TOML array of strings, or a comma-separated string (flag, env)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise ValueError(f"expected a list of {what}")


def _origins(value: Any) -> tuple[str, ...]:
    """Relay URLs (ws:// or wss://), kept in canonical origin form."""
    from tenchat.common.identity import relay_origin

    return tuple(relay_origin(item) for item in _str_items(value, "ws:// or wss:// URLs"))


def accepted_origins(config: Config, port: int) -> frozenset[str]:
    """The origins this relay answers auth for: ``config.origins`` when set, else its
    listening URL under its bound address and under its name
    (``{ws|wss}://{host or name}:{port}``; ``localhost``, ``127.0.0.1`` and ``[::1]`` too
    for a loopback address) and ``wss://{name}`` (behind a TLS proxy on port 443)."""
    from tenchat.common.identity import relay_origin

    if config.origins:
        return frozenset(config.origins)
    scheme = "wss" if config.tls else "ws"
    hosts = {config.host, config.name}
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(config.host).is_loopback:
            hosts |= {"127.0.0.1", "localhost", "::1"}
    if config.host == "localhost":
        hosts |= {"127.0.0.1", "::1"}
    out: set[str] = set()
    candidates = [f"{scheme}://{_bracket(h)}:{port}" for h in hosts]
    candidates.append(f"wss://{_bracket(config.name)}")
    for url in candidates:
        with contextlib.suppress(ValueError):
            out.add(relay_origin(url))
    return frozenset(out)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _handles(value: Any) -> tuple[str, ...]:
    """Handles, normalised; may be empty."""
    from tenchat.common import identity
    from tenchat.common.errors import ProtocolError

    out = []
    for item in _str_items(value, "handles"):
        try:
            out.append(identity.normalize_handle(item.removeprefix("@")))
        except ProtocolError as exc:
            raise ValueError(f"{item!r}: {exc.message}") from None
    return tuple(out)


def _storage(value: Any) -> str:
    """"sqlite", or a PostgreSQL URL (postgresql:// or postgres://, with a database)."""
    text = _str(value).strip()
    if text.lower() == "sqlite":
        return "sqlite"
    parts = urlsplit(text)
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        raise ValueError('expected "sqlite" or postgresql://USER@HOST[:PORT]/DATABASE')
    return text


def _bus(value: Any) -> str:
    """A bus URL (relay/bus.py), or "" for none."""
    from .bus import bus_url

    if isinstance(value, str) and not value.strip():
        return ""
    return bus_url(_str(value))


def _choice(*options: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _str(value).lower()
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text

    return parse


_PARSERS: Final[dict[str, Callable[[Any], Any]]] = {
    "host": _str,
    "port": _int(0, 65535),
    "data": _path,
    "storage": _storage,
    "name": _str,
    "origins": _origins,
    "max_frame": _int(1024, 64 * MiB),
    "otk_low": _int(0, 100_000),
    "otk_max": _int(1, 100_000),
    "sync": _choice("full", "normal"),
    "writer": _choice("process", "thread"),
    "batch_max": _int(1, 100_000),
    "event_loop": _choice("auto", "uvloop", "asyncio"),
    "live_buffer": _int(1, 1_000_000),
    "page_size": _int(1, 1000),
    "inflight_max": _int(1, 100_000),
    "sweep_interval": _int(1, 86_400),
    "sweep_batch": _int(1, 100_000),
    "story_sweep_interval": _int(1, 86_400),
    "max_blob": _int(1024, 2**40),
    "blob_quota": _int(1024, 2**50),
    "log_level": _choice("debug", "info", "warning", "error"),
    "log_format": _choice("text", "json"),
    "metrics_host": _str,
    "metrics_port": _int(0, 65535),
    "retention_days": _int(0, 36_500),
    "upload_expiry_hours": _int(1, 87_600),
    "tls_cert": _path,
    "tls_key": _path,
    "rate_conn": _int(0, 10_000_000),
    "burst_conn": _int(1, 10_000_000),
    "rate_user": _int(0, 10_000_000),
    "burst_user": _int(1, 10_000_000),
    "ip_conn_max": _int(0, 1_000_000),
    "ip_conn_exempt": _addresses,
    "forwarded_allow": _addresses,
    "queue_max": _int(1, 10**9),
    "queue_bytes": _int(1024, 2**50),
    "auth_timeout": _int(1, 3600),
    "send_timeout": _int(1, 3600),
    "write_limit": _int(1024, 64 * MiB),
    "registration": _choice("open", "invite-only"),
    "admins": _identities,
    "moderators": _identities,
    "audit_ip": _bool,
    "ban_poll": _int(1, 3600),
    "auth_fail_max": _int(1, 1000),
    "auth_fail_rate": _int(0, 1_000_000),
    "audit_window": _int(1, 86_400),
    "audit_retention_days": _int(0, 36_500),
    "bundle_rate": _int(0, 1_000_000),
    "sealed_rate": _int(0, 1_000_000),
    "sealed_address_rate": _int(0, 1_000_000),
    "bundle_burst": _int(1, 1_000_000),
    "watch_rate": _int(0, 1_000_000),
    "otk_rate": _int(0, 1_000_000),
    "limit_exempt": _addresses,
    "ident_rate": _int(0, 1_000_000),
    "handle_rate": _int(0, 1_000_000),
    "register_pow": _int(0, 32),
    "reserved_handles": _handles,
    "queue_share": _int(1, 100),
    "reactions_max": _int(1, 1000),
    "bus": _bus,
}
assert set(_PARSERS) == {f.name for f in dataclasses.fields(Config)}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            table = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    # A [relay] table is accepted so the file can be shared with other sections later.
    if set(table) == {"relay"} and isinstance(table["relay"], dict):
        table = table["relay"]
    unknown = sorted(set(table) - set(_PARSERS))
    if unknown:
        raise ConfigError(f"config file {path}: unknown key(s): {', '.join(unknown)}")
    return table


def load_config(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | str | None = None,
) -> Config:
    """Merge flags > environment > TOML file > defaults into a validated Config.

    ``flags`` holds only the options given on the command line (``None`` values are
    ignored); ``config_file`` falls back to ``TENCHAT_RELAY_CONFIG`` in ``environ``.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = environ or {}
    unknown = sorted(set(flags) - set(_PARSERS))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    if config_file is None:
        config_file = environ.get(ENV_PREFIX + "CONFIG") or None
    from_file = _read_toml(Path(config_file).expanduser()) if config_file else {}

    values: dict[str, Any] = {}
    for key, parse in _PARSERS.items():
        if key in flags:
            raw, origin = flags[key], f"--{key.replace('_', '-')}"
        elif ENV_PREFIX + key.upper() in environ:
            raw, origin = environ[ENV_PREFIX + key.upper()], ENV_PREFIX + key.upper()
        elif key in from_file:
            raw, origin = from_file[key], f"{key} in {config_file}"
        else:
            continue
        try:
            values[key] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"invalid {origin}: {exc}") from None
    if ("tls_cert" in values) != ("tls_key" in values):
        raise ConfigError("tls_cert and tls_key go together: give both or neither")
    return Config(**values)
