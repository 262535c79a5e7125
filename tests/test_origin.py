"""The origin a client signs into its login (protocol.md §2), and the exact bytes signed."""

from __future__ import annotations

import pytest

from tenchat.common.identity import auth_message, origin_authority, relay_origin


@pytest.mark.parametrize(("url", "origin"), [
    ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765"),
    ("WSS://Chat.Example.org:443/some/path?q#f", "wss://chat.example.org"),
    ("wss://chat.example.org:8443", "wss://chat.example.org:8443"),
    ("ws://chat.example.org:80", "ws://chat.example.org"),
    ("ws://[::1]:9000", "ws://[::1]:9000"),
    ("ws://[::1]:80/", "ws://[::1]"),
    # one spelling per host (security review L9)
    ("wss://relay.example.:443", "wss://relay.example"),
    ("ws://127.1:8765", "ws://127.0.0.1:8765"),
    ("ws://0x7f.0.0.1:8765", "ws://127.0.0.1:8765"),
    ("ws://2130706433:8765", "ws://127.0.0.1:8765"),
    ("wss://Bücher.example", "wss://xn--bcher-kva.example"),
    ("ws://[0:0:0:0:0:0:0:1]:9000", "ws://[::1]:9000"),
    ("ws://0177.0.0.01:8765", "ws://127.0.0.1:8765"),  # octal labels, as inet_aton reads
])
def test_relay_origin(url: str, origin: str) -> None:
    assert relay_origin(url) == origin


@pytest.mark.parametrize("url", ["http://chat.example.org", "ws://user@host:1", "ws://:80",
                                 "ws://host:99999", "chat.example.org", "",
                                 "ws://%65xample.org", "ws://[fe80::1%25eth0]:1",
                                 "ws://256.1.1.1", "ws://1.2.3.4.5", "ws://relay..example",
                                 "ws://.:80", "ws://\u2024x", "ws://.x",
                                 "ws://[v1.x:y]",  # an IPvFuture literal: not an IPv6 host
                                 "ws://ü" + "a" * 70 + ".org"])  # IDNA: a label > 63
def test_not_a_relay_url(url: str) -> None:
    with pytest.raises(ValueError):
        relay_origin(url)


def test_auth_message_bytes() -> None:
    challenge = bytes(range(32))
    assert auth_message("wss://chat.example.org", challenge) == (
        b"tenchat/auth/v2\x00wss://chat.example.org\x00" + challenge)
    assert origin_authority("ws://[::1]:9000") == "[::1]:9000"
