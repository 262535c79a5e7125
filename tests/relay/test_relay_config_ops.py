"""The operations settings (limits, TLS, registration, roles, audit) in relay/config.py:
flags > environment > TOML, validated with the setting named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenchat.relay.admin import role_of
from tenchat.relay.config import ConfigError, load_config

ALICE = "ab" * 32


def test_operations_settings_from_each_source(tmp_path: Path) -> None:
    toml = tmp_path / "relay.toml"
    toml.write_text(f'admins = ["{ALICE}", "@Ops"]\nmoderators = ["@mod"]\n'
                    'registration = "invite-only"\naudit_ip = true\nrate_conn = 50\n')
    env = {"TENCHAT_RELAY_MODERATORS": "@mod, @helper", "TENCHAT_RELAY_AUDIT_IP": "false",
           "TENCHAT_RELAY_QUEUE_MAX": "10"}
    cfg = load_config({"rate_conn": 7}, env, toml)
    assert cfg.admins == (ALICE, "@ops") and cfg.moderators == ("@mod", "@helper")
    assert cfg.registration == "invite-only" and cfg.audit_ip is False
    assert cfg.rate_conn == 7 and cfg.queue_max == 10 and cfg.tls is False
    assert role_of(cfg, bytes.fromhex(ALICE), None) == "admin"
    assert role_of(cfg, bytes(32), "ops") == "admin"
    assert role_of(cfg, bytes(32), "helper") == "moderator"
    assert role_of(cfg, bytes(32), "someone") == "user"


@pytest.mark.parametrize(("flags", "message"), [
    ({"registration": "closed"}, "--registration: must be one of open, invite-only"),
    ({"admins": "alice"}, "--admins: 'alice' is neither"),
    ({"audit_ip": "maybe"}, "--audit-ip: expected true or false"),
    ({"rate_conn": -1}, "--rate-conn: must be between 0"),
    ({"tls_cert": "/x.pem"}, "tls_cert and tls_key go together"),
])
def test_bad_operations_settings_are_named(flags: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(flags, {})
