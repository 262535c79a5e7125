"""The deployment files: the sample config parses and names every relay setting; the
systemd unit is hardened and runs the relay with that config."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

from tenchat.relay.config import Config, load_config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_sample_config_parses_and_covers_every_setting() -> None:
    sample = DEPLOY / "relay.toml"
    # Settings with no value by default (the TLS files) appear commented out.
    optional = set(re.findall(r"^# ([a-z_]+) = ", sample.read_text(), re.MULTILINE))
    assert optional <= {"tls_cert", "tls_key"}, optional
    keys = set(tomllib.loads(sample.read_text())) | optional
    fields = {f.name for f in dataclasses.fields(Config)}
    assert keys == fields, (
        f"missing from deploy/relay.toml: {sorted(fields - keys)};"
        f" unknown: {sorted(keys - fields)}"
    )
    cfg = load_config(config_file=sample)
    assert cfg.data == Path("/var/lib/tenchat-relay")
    assert cfg.metrics_port == 9465 and cfg.log_format == "json"
    # Every key has a comment on its line or just above it.
    lines = sample.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            assert "#" in line or lines[i - 1].startswith("#"), f"no comment: {line}"


def test_systemd_unit_is_hardened() -> None:
    unit = (DEPLOY / "tenchat-relay.service").read_text()
    settings: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    for key, want in {"DynamicUser": "yes", "StateDirectory": "tenchat-relay",
                      "ProtectSystem": "strict", "NoNewPrivileges": "yes",
                      "ProtectHome": "yes", "PrivateTmp": "yes",
                      "CapabilityBoundingSet": ""}.items():
        assert settings.get(key) == [want], (key, settings.get(key))
    start = settings["ExecStart"][0]
    assert "tenchat-relay serve --config /etc/tenchat-relay/relay.toml" in start
    assert "--data /var/lib/tenchat-relay" in start


def test_daemon_user_unit_runs_the_daemon_as_the_user() -> None:
    unit = (DEPLOY / "tenchat-daemon.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines()
                    if "=" in line and not line.startswith("#"))
    assert settings["ExecStart"].endswith(" daemon")
    assert "--passphrase-file %h/" in settings["ExecStart"]
    assert settings["WantedBy"] == "default.target"  # a user unit: no User=, no system target
    assert "User" not in settings and settings["UMask"] == "0077"
    assert settings["Restart"] == "on-failure"
