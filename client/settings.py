"""User settings from ``HOME/config.toml``: theme, notifications, key bindings.

    theme = "textual-dark"
    ca_file = "/path/to/relay-ca.pem"   # trust this CA for wss:// (TENCHAT_CA_FILE wins)
    relay = "wss://a.example.org,wss://b.example.org"   # the relay's URLs (--relay wins)
    [notifications]
    bell = true
    desktop = true
    do_not_disturb = false
    [keys]
    search = "ctrl+f"          # action name = key (Textual key syntax)
    [prekeys]
    rotate_days = 7            # make a new signed prekey this often
    grace_days = 30            # keep the replaced one this long (prekey envelopes in flight)

Unknown keys are an error with the key named, so a typo never silently does nothing.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..common.errors import TenchatError

__all__ = ["Settings", "SettingsError", "load_settings", "save_settings", "FILENAME"]

FILENAME = "config.toml"


class SettingsError(TenchatError):
    pass


@dataclass(frozen=True)
class Settings:
    theme: str = "textual-dark"
    bell: bool = True
    desktop_notifications: bool = True
    do_not_disturb: bool = False
    keys: dict[str, str] = field(default_factory=dict)  # action name -> key
    ca_file: str = ""  # a PEM CA file to verify a wss:// relay with, instead of the system's
    # The relay's URL, or several (its nodes, comma-separated, tried in turn): over the one
    # the identity was created with; --relay and TENCHAT_RELAY win. "": the identity's.
    relay: str = ""
    spk_rotate_days: float = 7.0  # [prekeys] rotate_days
    spk_grace_days: float = 30.0  # [prekeys] grace_days

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _bool(table: dict[str, Any], key: str, default: bool, where: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise SettingsError(f"{where}: {key} must be true or false")
    return value


def _days(table: dict[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3650:
        raise SettingsError(f"{where}: prekeys.{key} must be a number of days in (0, 3650]")
    return float(value)


def load_settings(home: Path) -> Settings:
    path = home / FILENAME
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return Settings()
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"theme", "notifications", "keys", "ca_file", "prekeys", "relay"}
    if unknown:
        raise SettingsError(f"{path}: unknown key(s): {', '.join(sorted(unknown))}")
    notes = data.get("notifications", {})
    if not isinstance(notes, dict):
        raise SettingsError(f"{path}: [notifications] must be a table")
    unknown = set(notes) - {"bell", "desktop", "do_not_disturb"}
    if unknown:
        raise SettingsError(f"{path}: unknown notification key(s): {', '.join(sorted(unknown))}")
    keys = data.get("keys", {})
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise SettingsError(f"{path}: [keys] maps action names to key strings")
    theme = data.get("theme", Settings.theme)
    if not isinstance(theme, str):
        raise SettingsError(f"{path}: theme must be a string")
    ca_file = data.get("ca_file", "")
    if not isinstance(ca_file, str):
        raise SettingsError(f"{path}: ca_file must be a string")
    relay = data.get("relay", "")
    if not isinstance(relay, str):
        raise SettingsError(f"{path}: relay must be a string (URLs, comma-separated)")
    prekeys = data.get("prekeys", {})
    if not isinstance(prekeys, dict):
        raise SettingsError(f"{path}: [prekeys] must be a table")
    unknown = set(prekeys) - {"rotate_days", "grace_days"}
    if unknown:
        raise SettingsError(f"{path}: unknown prekeys key(s): {', '.join(sorted(unknown))}")
    return Settings(
        spk_rotate_days=_days(prekeys, "rotate_days", Settings.spk_rotate_days, str(path)),
        spk_grace_days=_days(prekeys, "grace_days", Settings.spk_grace_days, str(path)),
        ca_file=ca_file,
        relay=relay.strip(),
        theme=theme,
        bell=_bool(notes, "bell", True, str(path)),
        desktop_notifications=_bool(notes, "desktop", True, str(path)),
        do_not_disturb=_bool(notes, "do_not_disturb", False, str(path)),
        keys=dict(keys),
    )


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def save_settings(home: Path, settings: Settings) -> None:
    lines = [f"theme = {_toml_str(settings.theme)}"]
    if settings.ca_file:
        lines.append(f"ca_file = {_toml_str(settings.ca_file)}")
    if settings.relay:
        lines.append(f"relay = {_toml_str(settings.relay)}")
    lines += ["", "[notifications]",
             f"bell = {str(settings.bell).lower()}",
             f"desktop = {str(settings.desktop_notifications).lower()}",
             f"do_not_disturb = {str(settings.do_not_disturb).lower()}", "", "[keys]"]
    lines += [f"{action} = {_toml_str(key)}" for action, key in sorted(settings.keys.items())]
    if (settings.spk_rotate_days, settings.spk_grace_days) != (Settings.spk_rotate_days,
                                                               Settings.spk_grace_days):
        lines += ["", "[prekeys]", f"rotate_days = {settings.spk_rotate_days!r}",
                  f"grace_days = {settings.spk_grace_days!r}"]
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    (home / FILENAME).write_text("\n".join(lines) + "\n")
