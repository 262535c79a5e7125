"""Behind a reverse proxy: which address the per-address limits and the audit log see
(the setting ``forwarded_allow``; docs/operations.md "Behind a reverse proxy").

Without it every client behind a proxy on the same machine is loopback, which the
per-address limits exempt, so they did not apply at all. With it the relay believes the
listed proxies' ``X-Forwarded-For`` (right-most untrusted hop) and nothing a client
writes into that header itself."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from tenchat.relay.limits import AddressCounter, client_address, network_of
from tests.support.inproc import StartRelay, eventually
from tests.support.wsclient import RelayClient

PROXY = ("127.0.0.1", 50000)
TRUSTED = frozenset({"127.0.0.1", "10.0.0.2"})


def xff(value: str) -> dict[str, str]:
    return {"X-Forwarded-For": value}


def test_the_header_of_an_untrusted_peer_is_ignored() -> None:
    assert client_address(("203.0.113.9", 1), xff("198.51.100.1"), TRUSTED) == "203.0.113.9"
    assert client_address(PROXY, xff("198.51.100.1"), frozenset()) == "127.0.0.1"


def test_a_trusted_proxy_names_the_client() -> None:
    assert client_address(PROXY, xff("198.51.100.1"), TRUSTED) == "198.51.100.1"
    assert client_address(PROXY, None, TRUSTED) == "127.0.0.1"  # no header: the proxy
    assert client_address(PROXY, {}, TRUSTED) == "127.0.0.1"


def test_what_a_client_writes_into_the_header_is_never_believed() -> None:
    # The client sent "X-Forwarded-For: 192.0.2.66"; the proxy appended its peer.
    assert client_address(PROXY, xff("192.0.2.66, 198.51.100.1"), TRUSTED) == "198.51.100.1"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    header = xff("192.0.2.66, 198.51.100.1, 10.0.0.2")  # client, then an inner proxy
    assert client_address(PROXY, header, TRUSTED) == "198.51.100.1"
    assert client_address(PROXY, xff("10.0.0.2"), TRUSTED) == "10.0.0.2"  # only proxies


def test_a_malformed_hop_falls_back_to_the_last_trusted_one() -> None:
    assert client_address(PROXY, xff("not-an-address"), TRUSTED) == "127.0.0.1"
    assert client_address(PROXY, xff("198.51.100.1, junk, 10.0.0.2"), TRUSTED) == "10.0.0.2"
    # addresses are normalised, so one client can't dodge a cap by spelling
    assert client_address(PROXY, xff("2001:DB8::0001"), TRUSTED) == "2001:db8::1"


async def connect(url: str, forwarded: str) -> RelayClient:
    return await RelayClient.connect(url, additional_headers=xff(forwarded))


@pytest.mark.asyncio
async def test_the_connection_cap_counts_clients_behind_a_listed_proxy(
        relay_with: StartRelay) -> None:
    relay = await relay_with(ip_conn_max=1, ip_conn_exempt=(),
                             forwarded_allow=("127.0.0.1",))
    first = await connect(relay.url, "198.51.100.1")
    other = await connect(relay.url, "198.51.100.2")  # another client: admitted
    with pytest.raises(InvalidStatus) as refused:  # the first client again: over its cap
        await connect(relay.url, "192.0.2.66, 198.51.100.1")
    assert refused.value.response.status_code == 503
    assert relay.server is not None
    await eventually(lambda: len(relay.server.sessions) == 2)  # type: ignore[union-attr]
    assert sorted(s.address for s in relay.server.sessions) == ["198.51.100.1",
                                                               "198.51.100.2"]
    await first.close()
    await other.close()


@pytest.mark.asyncio
async def test_without_the_setting_the_header_changes_nothing(
        relay_with: StartRelay) -> None:
    relay = await relay_with(ip_conn_max=1, ip_conn_exempt=())
    first = await connect(relay.url, "198.51.100.1")
    with pytest.raises(InvalidStatus):  # same socket address: one too many
        await connect(relay.url, "198.51.100.2")
    assert relay.server is not None
    assert [s.address for s in relay.server.sessions] == ["127.0.0.1"]
    await first.close()


def test_limits_count_an_ipv6_client_by_its_64() -> None:
    assert network_of("2001:db8:1:2:aaaa::1") == network_of("2001:db8:1:2:ffff::9")
    assert network_of("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert network_of("2001:db8:1:3::1") != network_of("2001:db8:1:2::1")
    assert network_of("198.51.100.1") == "198.51.100.1"
    assert network_of("::ffff:198.51.100.1") == "198.51.100.1"
    assert network_of("?") == "?"
    counter = AddressCounter(cap=2)
    assert counter.add("2001:db8::1") and counter.add("2001:db8::2")
    assert not counter.add("2001:db8::ffff")  # the same /64: over the cap
    assert counter.add("2001:db8:0:1::1")  # the next /64
    counter.remove("2001:db8::2")
    assert counter.add("2001:db8::3")
