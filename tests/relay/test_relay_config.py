"""Config precedence and validation (flag > environment > TOML file > default), no processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenchat.relay.config import Config, ConfigError, default_data_dir, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relay.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    cfg = load_config({}, {}, None)
    assert cfg == Config()
    assert (cfg.host, cfg.port, cfg.name, cfg.sync) == ("127.0.0.1", 8765, "localhost", "full")
    assert cfg.data == default_data_dir() and cfg.data.name == "tenchat-relay"
    assert cfg.max_size_ceiling >= 8 * cfg.max_frame


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    toml = write(tmp_path, 'port = 1111\nname = "file"\nhost = "0.0.0.0"\notk_low = 5\n')
    env = {"TENCHAT_RELAY_PORT": "2222", "TENCHAT_RELAY_NAME": "env"}
    cfg = load_config({"port": 3333, "host": None}, env, toml)
    assert cfg.port == 3333  # flag
    assert cfg.name == "env"  # environment
    assert cfg.host == "0.0.0.0"  # file (the None flag means "not given")
    assert cfg.otk_low == 5  # file
    assert cfg.max_frame == Config().max_frame  # default


def test_config_file_from_environment(tmp_path: Path) -> None:
    toml = write(tmp_path, "[relay]\nmax_frame = 4096\n")
    cfg = load_config({}, {"TENCHAT_RELAY_CONFIG": str(toml)})
    assert cfg.max_frame == 4096


def test_data_dir_from_env_is_a_path(tmp_path: Path) -> None:
    cfg = load_config({}, {"TENCHAT_RELAY_DATA": str(tmp_path / "d")})
    assert cfg.data == tmp_path / "d" and cfg.db_path.parent == tmp_path / "d"


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        Config().port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("flags", "env", "toml", "needle"),
    [
        ({}, {}, "prot = 1\n", "unknown key(s): prot"),
        ({}, {}, "port = 'x'\n", "invalid port in"),
        ({}, {}, "port = [\n", "not valid TOML"),
        ({}, {"TENCHAT_RELAY_PORT": "http"}, "", "invalid TENCHAT_RELAY_PORT"),
        ({"port": 70000}, {}, "", "invalid --port: must be between 0 and 65535"),
        ({"sync": "off"}, {}, "", "invalid --sync: must be one of full, normal"),
        ({"max_frame": 10}, {}, "", "invalid --max-frame"),
        ({"name": "  "}, {}, "", "invalid --name"),
        ({}, {}, "port = true\n", "invalid port"),
    ],
)
def test_bad_settings_are_named(
    tmp_path: Path, flags: dict[str, object], env: dict[str, str], toml: str, needle: str
) -> None:
    path = write(tmp_path, toml) if toml else None
    with pytest.raises(ConfigError) as info:
        load_config(flags, env, path)
    assert needle in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config({}, {}, tmp_path / "nope.toml")


# --- origins: the URLs clients dial (issue 21, item 1) -------------------------------------


def test_origins_are_kept_canonical_and_bad_ones_named() -> None:
    cfg = load_config({"origins": "WSS://Chat.Example.org:443/path, ws://[::1]:9000"}, {})
    assert cfg.origins == ("wss://chat.example.org", "ws://[::1]:9000")
    with pytest.raises(ConfigError, match="origins"):
        load_config({"origins": "https://chat.example.org"}, {})


def test_accepted_origins() -> None:
    from tenchat.relay.config import accepted_origins

    loop = accepted_origins(load_config({"name": "chat.example.org"}, {}), 8765)
    assert loop == {"ws://127.0.0.1:8765", "ws://localhost:8765", "ws://[::1]:8765",
                    "ws://chat.example.org:8765", "wss://chat.example.org"}
    public = accepted_origins(load_config({"host": "0.0.0.0", "name": "relay.example"}, {}),
                              443)
    assert "ws://127.0.0.1:443" not in public and "wss://relay.example" in public
    explicit = load_config({"origins": "wss://a.example,wss://b.example:8443"}, {})
    assert accepted_origins(explicit, 8765) == {"wss://a.example", "wss://b.example:8443"}
