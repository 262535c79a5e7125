"""What the wallet's parts (gifts.py, nfts.py) use of WalletService (service.py): its
client, store, chains, keys and verified links. Declared once here for the type checker;
the service defines them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...common import wallets as w
from .chains import Chain
from .store import WalletStore

if TYPE_CHECKING:
    from ..service import Client

__all__ = ["WalletParts"]


class WalletParts:
    client: Client
    store: WalletStore

    if TYPE_CHECKING:
        def chains(self) -> dict[str, Chain]: ...
        def chain(self, name: str | int | None) -> Chain: ...
        def evm(self, chain: Chain) -> Any: ...
        def _address(self, text: str) -> str: ...
        async def _key(self, address: str) -> bytes: ...
        async def addresses(self) -> list[str]: ...
        async def default_address(self) -> str: ...
        async def verified_wallets(self, user: bytes, *, now: datetime | None = None
                                   ) -> list[w.VerifiedLink]: ...
        async def peer_wallets(self, peer: str) -> tuple[bytes, str, list[w.VerifiedLink]]: ...
