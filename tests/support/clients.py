"""In-process clients (the real client core, :class:`~tenchat.client.service.Client`) on a
real relay, made by name and closed when the test ends — what the ``people``, ``client``,
``two_clients`` and ``group`` fixtures in ``tests/conftest.py`` hand out::

    async def test_x(people: People) -> None:
        alice, bob = await people("alice", "bob")      # each registers its name as handle
        carol = await people.one("carol")

Each name gets its own home under the test's ``tmp_path``; the handle is the name, so two
tests must not share a relay (the ``relay`` fixture is per test).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tenchat.client.service import Client

__all__ = ["PASSPHRASE", "People", "Pair", "Group"]

PASSPHRASE = "correct horse battery staple"

Pair = tuple[Client, Client]  # the two_clients fixture: (alice, bob)


class People:
    """Makes named clients on ``relay_url`` and closes every one of them at the end
    (closing twice is harmless, so a test may close one itself)."""

    def __init__(self, base: Path, relay_url: str) -> None:
        self.base = base
        self.relay_url = relay_url
        self.made: list[Client] = []

    def home(self, name: str) -> Path:
        return self.base / name

    async def __call__(self, *names: str) -> list[Client]:
        return [await self.one(name) for name in names]

    async def one(self, name: str) -> Client:
        client = await Client.create(self.home(name), self.relay_url, name, PASSPHRASE)
        self.made.append(client)
        return client

    async def close(self) -> None:
        for client in self.made:
            await client.close()


@dataclass(frozen=True)
class Group:
    """A group ``owner`` created with ``members`` in it (as they were at creation)."""

    id: bytes
    owner: Client
    members: tuple[Client, ...]

    @property
    def everyone(self) -> tuple[Client, ...]:
        return (self.owner, *self.members)
