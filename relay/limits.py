"""Abuse limits of the relay: token buckets for frame rates, counts of connections per
address. Plain objects fed a clock, so tests drive them without a network.

A :class:`TokenBucket` holds up to ``burst`` tokens and gains ``rate`` per second;
each frame takes one. :meth:`TokenBucket.take` answers 0 (allowed) or how long to
wait until a token is there (the ``retry_after`` of a ``rate_limited`` error).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from .config import Config

__all__ = ["TokenBucket", "UserBuckets", "KeyedBuckets", "AddressCounter", "LogBudget",
           "Guards", "Buckets", "MakeBuckets", "client_address", "network_of"]

Clock = Callable[[], float]


class Buckets(Protocol):
    """A token bucket per key: :class:`UserBuckets` in one node's memory, or
    relay/shared_limits.py's ``SharedBuckets`` over a cluster's nodes."""

    def take(self, key: bytes | str) -> float: ...


# (kind, rate a second, burst) -> the buckets of that kind
MakeBuckets = Callable[[str, float, float], Buckets]


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp", "_clock")

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        self.rate = rate  # tokens per second; 0 = no limit
        self.burst = burst  # the most tokens held (the largest burst allowed)
        self.tokens = burst
        self._clock = clock
        self.stamp = clock()

    def take(self, n: float = 1.0) -> float:
        """Take ``n`` tokens: 0.0 if they were there, else the seconds until they will be
        (nothing is taken then)."""
        if not self.rate:
            return 0.0
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate

    def full_at(self) -> float:
        """The clock time at which this bucket is full again (it can then be forgotten)."""
        return self.stamp + (self.burst - self.tokens) / self.rate if self.rate else self.stamp


class UserBuckets:
    """One bucket per identity (or any key: an address, a target), shared by all its
    connections. Full buckets are the same as no bucket, so they are dropped when the
    table grows (memory stays bounded by the keys active within one refill time)."""

    _PRUNE_AT: Final = 4096

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._prune_at = self._PRUNE_AT

    def take(self, user: Hashable) -> float:  # (Buckets: keys are bytes or str)
        if not self.rate:
            return 0.0
        bucket = self._buckets.get(user)
        if bucket is None:
            if len(self._buckets) >= self._prune_at:
                self._prune()
            bucket = self._buckets[user] = TokenBucket(self.rate, self.burst, self._clock)
        return bucket.take()

    def _prune(self) -> None:
        now = self._clock()
        self._buckets = {u: b for u, b in self._buckets.items() if b.full_at() > now}
        self._prune_at = max(self._PRUNE_AT, 2 * len(self._buckets))

    def __len__(self) -> int:
        return len(self._buckets)


def client_address(peer: object, headers: Mapping[str, str] | None,
                   proxies: frozenset[str]) -> str:
    """The address every per-address limit and the audit log use for a connection.

    ``peer`` is the socket's remote address (a tuple whose first item is the host). When
    it is one of the trusted ``proxies`` (the setting ``forwarded_allow``), the client is
    the right-most entry of ``X-Forwarded-For`` that is not itself a trusted proxy: each
    proxy appends the address it was connected from, so entries to the left of that one
    were written by the client and are never believed. A malformed entry ends the walk
    at the last trusted hop (the proxy's own address: limits then count per proxy, as
    without the setting, rather than per an address the client chose)."""
    host = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
    if host not in proxies or headers is None:
        return host
    forwarded = headers.get("X-Forwarded-For")
    if not forwarded:
        return host
    for item in reversed(forwarded.split(",")):
        try:
            hop = str(ipaddress.ip_address(item.strip()))
        except ValueError:
            return host
        if hop not in proxies:
            return hop
        host = hop
    return host


def network_of(address: str) -> str:
    """What the per-address limits count by: an IPv4 address itself, an IPv6 address's
    /64 network (one subscriber is routinely given a whole /64, so counting single IPv6
    addresses would give one person 2**64 fresh budgets). Anything else is itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is that IPv4 client
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class AddressCounter:
    """Open connections per client network (:func:`network_of`: an IPv4 address, an IPv6
    /64), with a cap (0 = no cap). Exempt addresses are named one by one."""

    def __init__(self, cap: int, exempt: Iterable[str] = ()) -> None:
        self.cap = cap
        self.exempt = frozenset(exempt)  # addresses never capped
        self._open: dict[str, int] = {}

    def full(self, address: str) -> bool:
        return (bool(self.cap) and self.count(address) >= self.cap
                and address not in self.exempt)

    def add(self, address: str) -> bool:
        """Count a connection; False (not counted) if the address is at its cap."""
        if self.full(address):
            return False
        network = network_of(address)
        self._open[network] = self._open.get(network, 0) + 1
        return True

    def remove(self, address: str) -> None:
        network = network_of(address)
        left = self._open.get(network, 0) - 1
        if left > 0:
            self._open[network] = left
        else:
            self._open.pop(network, None)

    def count(self, address: str) -> int:
        return self._open.get(network_of(address), 0)


class LogBudget:
    """At most ``burst`` log records, then ``rate`` per second: a flood of bad frames
    can't fill the log with tracebacks. :meth:`take` says whether to log this one, and
    how many were left unlogged since the last one logged (say so in that record)."""

    def __init__(self, rate: float = 1 / 6, burst: int = 10, clock: Clock = time.monotonic
                 ) -> None:
        self._bucket = TokenBucket(rate, burst, clock)
        self.dropped = 0

    def take(self) -> tuple[bool, int]:
        if self._bucket.take():
            self.dropped += 1
            return False, 0
        dropped, self.dropped = self.dropped, 0
        return True, dropped


KeyedBuckets = UserBuckets


class Guards:
    """The relay's shared abuse limits beyond frame rates (issue 12), one per server.
    Rates in the config are per minute or per hour; each bucket's burst is the same
    number unless the config names a burst."""

    def __init__(self, config: Config, clock: Clock = time.monotonic,
                 make: MakeBuckets | None = None) -> None:
        """``make``: where the buckets live (default: this process's memory)."""
        if make is None:
            def make(kind: str, rate: float, burst: float) -> Buckets:
                return KeyedBuckets(rate, burst, clock)

        self.exempt = frozenset(config.limit_exempt)
        # audited authentication failures per address
        self.auth_failures = make("auth_failures", config.auth_fail_rate / 60,
                                  config.auth_fail_rate)
        # sealed messages per recipient, and per sending address (the sender is unknown)
        self.sealed_to = make("sealed_to", config.sealed_rate / 60, config.sealed_rate)
        self.sealed_from = make("sealed_from", config.sealed_address_rate / 60,
                                config.sealed_address_rate)
        # bundles fetched per requesting identity
        self.bundles = make("bundles", config.bundle_rate / 60, config.bundle_burst)
        # presence watch lists per identity (each is a store look-up of its users)
        self.watches = make("watches", config.watch_rate / 60, config.watch_rate)
        # one-time prekeys handed out per target identity
        self.otks = make("otks", config.otk_rate / 3600, config.otk_rate)
        # identities new to the relay, and handle registrations, per address
        self.new_identities = make("new_identities", config.ident_rate / 3600,
                                   config.ident_rate)
        self.registrations = make("registrations", config.handle_rate / 3600,
                                  config.handle_rate)
        self.admitted: set[bytes] = set()  # new identities admitted since start (bounded)

    def is_exempt(self, address: str) -> bool:
        return address in self.exempt
