"""The relay's configuration: one frozen :class:`Config`, built once and passed down.

Each setting comes from, in this order of precedence: a command-line flag, an
environment variable ``TENCHAT_RELAY_<NAME>``, the TOML file given by
``--config`` (or ``TENCHAT_RELAY_CONFIG``), then the default below.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import platformdirs

from tenchat.common.errors import TenchatError

__all__ = ["Config", "ConfigError", "load_config", "ENV_PREFIX", "default_data_dir"]

ENV_PREFIX: Final = "TENCHAT_RELAY_"
MiB: Final = 1024 * 1024


class ConfigError(TenchatError):
    """A setting is missing, unknown or out of range; the message names it."""


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("tenchat-relay", appauthor=False))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8765  # 0 picks a free port
    data: Path = dataclasses.field(default_factory=default_data_dir)
    # The relay's name: clients sign it into their auth, so keep it stable across restarts.
    name: str = "localhost"
    max_frame: int = MiB  # largest frame answered normally; larger ones get too_large
    otk_low: int = 20  # push prekeys_low when a fetch leaves fewer one-time prekeys than this
    otk_max: int = 500  # one-time prekeys kept per identity; extra ones are dropped
    # "full": every commit is fsynced (nothing acknowledged is lost on power loss);
    # "normal": WAL without fsync per commit (survives a crash of the process, not of the OS).
    sync: str = "full"
    batch_max: int = 2000  # writes per group commit
    live_buffer: int = 1000  # live pushes buffered per subscribed connection before a re-drain
    page_size: int = 256  # messages per page when draining a queue
    inflight_max: int = 512  # unanswered requests per connection before it stops reading
    sweep_interval: int = 60  # seconds between sweeps deleting expired messages
    sweep_batch: int = 500  # expired rows deleted per transaction (per table)
    story_sweep_interval: int = 3600  # seconds between sweeps deleting expired stories
    max_blob: int = 50 * MiB  # largest media blob (ciphertext bytes); larger ones get too_large
    blob_quota: int = 1024 * MiB  # blob bytes one identity may store (uploads in progress count)
    log_level: str = "info"

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
    "name": _str,
    "max_frame": _int(1024, 64 * MiB),
    "otk_low": _int(0, 100_000),
    "otk_max": _int(1, 100_000),
    "sync": _choice("full", "normal"),
    "batch_max": _int(1, 100_000),
    "live_buffer": _int(1, 1_000_000),
    "page_size": _int(1, 1000),
    "inflight_max": _int(1, 100_000),
    "sweep_interval": _int(1, 86_400),
    "sweep_batch": _int(1, 100_000),
    "story_sweep_interval": _int(1, 86_400),
    "max_blob": _int(1024, 2**40),
    "blob_quota": _int(1024, 2**50),
    "log_level": _choice("debug", "info", "warning", "error"),
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
    return Config(**values)
