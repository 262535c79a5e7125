"""The client's wallet core: keys, links, holdings and gifts, for the CLI and the TUI.

Imported by the client core, so it imports no web3 at module level: the modules
that need web3 or eth-account (``evm``, ``keys``) are imported inside the methods
that use them. Every binding is verified here before a wallet is shown or paid,
and gift amounts are read from the chain, never from a message.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ...common import frames as f
from ...common import siwe
from ...common import wallets as w
from ...common.errors import ErrorCode, ProtocolError
from ..connection import ConnectionLost, RelayConnection, RelayError, RelayUnreachable
from . import WalletError
from .chains import Chain, find_chain, load_chains
from .gifts import (
    GiftPlan,
    GiftsMixin,
    format_amount,
    gift_text,
    now_ms,
    parse_amount,
    token_symbol,
)
from .nfts import NftsMixin
from .store import BalanceRow, WalletStore

if TYPE_CHECKING:
    from ..service import Client

__all__ = ["WalletService", "GiftPlan", "format_amount", "parse_amount", "gift_text",
           "token_symbol"]

log = logging.getLogger("tenchat.client.wallet")

BALANCE_EVERY = 300.0  # seconds between balance refreshes while the client runs
GIFT_EVERY = 10.0  # seconds between checks of pending gifts while the client runs


class WalletService(GiftsMixin, NftsMixin):
    """Chains, keys, links and balances here; gifts (gifts.py) and NFTs (nfts.py) mixed in."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.store = WalletStore(client.cache)
        self._chains: dict[str, Chain] | None = None
        # One Evm per (chain id, RPC URL): its HTTP session stays open (keep-alive) and the
        # RPC's chain id is checked once, not at every call (bench.wallet: a cached NFT
        # picture went from two RPC round trips on a new TCP connection to one).
        self._evms: dict[tuple[int, str | None], Any] = {}

    # --- chains ---------------------------------------------------------------------------

    def chains(self) -> dict[str, Chain]:
        if self._chains is None:
            self._chains = load_chains(self.client.home)
        return self._chains

    def chain(self, name: str | int | None) -> Chain:
        chains = self.chains()
        if name is None:
            usable = [ch for ch in chains.values() if ch.rpc]
            if len(usable) == 1:
                return usable[0]
            name = "ethereum"
        return find_chain(chains, name)

    def evm(self, chain: Chain) -> Any:
        from .evm import Evm

        key = (chain.chain_id, chain.rpc)
        if key not in self._evms:
            self._evms[key] = Evm(chain)
        return self._evms[key]

    # --- keys -----------------------------------------------------------------------------

    async def _add_key(self, key: bytes) -> str:
        from .keys import address_of

        address = address_of(key)
        async with self.client.cache.transaction():
            added = await self.store.put_key(address, key, now_ms())
        if not added:
            raise WalletError(f"wallet {address} is already here")
        return address

    async def create(self) -> str:
        from .keys import new_key

        return await self._add_key(new_key())

    async def import_key(self, text: str) -> str:
        from .keys import key_from_hex

        return await self._add_key(key_from_hex(text))

    async def import_keystore(self, data: str, password: str) -> str:
        from .keys import key_from_keystore

        return await self._add_key(key_from_keystore(data, password))

    async def addresses(self) -> list[str]:
        return [a for a, _ in await self.store.addresses()]

    def _address(self, text: str) -> str:
        if not w.is_address(text):
            raise WalletError(f"{text[:50]!r} is not an Ethereum address (0x and 40 hex digits)")
        return siwe.to_checksum_address(text)

    async def _key(self, address: str) -> bytes:
        key = await self.store.key(self._address(address))
        if key is None:
            raise WalletError(f"no key for wallet {address} here; see `tenchat wallet list`")
        return key

    async def remove(self, address: str) -> None:
        address = self._address(address)
        async with self.client.cache.transaction():
            removed = await self.store.remove_key(address)
        if not removed:
            raise WalletError(f"no wallet {address} here")

    async def default_address(self) -> str:
        found = await self.addresses()
        if not found:
            raise WalletError("no wallet yet; make one with `tenchat wallet create` or "
                              "`tenchat wallet import`")
        return found[0]

    # --- links ----------------------------------------------------------------------------

    async def link(self, address: str) -> w.VerifiedLink:
        """Sign a SIWE binding of ``address`` to our identity and publish it."""
        from .keys import sign_personal

        address = self._address(address)
        key = await self._key(address)
        conn = await self.client.connection()
        now = datetime.now(UTC)
        try:
            # The SIWE domain is the URL we dialled, never the name the relay announced.
            message = w.link_siwe(conn.origin, address, self.client.user,
                                  secrets.token_hex(8), now)
        except siwe.MalformedMessage as exc:
            raise WalletError(f"this relay's URL can't be used in a SIWE domain: {exc}") \
                from None
        text = message.text()
        record = w.sign_link(text, sign_personal(key, text), self.client.user,
                             self.client.identity.sign, expires=w.link_expiry(now))
        await self._set_unlinked(address, False)
        await conn.request(f.WalletLinkPut, record=record)
        return w.open_link(record, origins={conn.origin}, now=now)

    async def unlink(self, address: str) -> None:
        """Unlink: remembered here first (this client never renews or shows the binding
        again, whatever the relay keeps), then withdrawn from the relay."""
        address = self._address(address)
        await self._set_unlinked(address, True)
        conn = await self.client.connection()
        try:
            await conn.request(f.WalletUnlink, address=address)
        except RelayError as exc:
            if exc.code == ErrorCode.NOT_FOUND:
                raise WalletError(f"{address} is not linked to you") from None
            raise

    async def unlinked(self) -> set[str]:
        """Wallets this identity unlinked from this device (cache meta ``wallet_unlinked``)."""
        import json

        raw = await self.client.cache.settings.get("wallet_unlinked")
        return set(json.loads(raw)) if raw else set()

    async def _set_unlinked(self, address: str, unlinked: bool) -> None:
        import json

        async with self.client.cache.transaction():
            current = await self.unlinked()
            new = current | {address} if unlinked else current - {address}
            if new != current:
                await self.client.cache.settings.set("wallet_unlinked",
                                                 json.dumps(sorted(new)).encode())

    async def renew_links(self, *, now: datetime | None = None) -> list[str]:
        """Countersign our bindings again with a later expiry once less than
        LINK_RENEW_BEFORE is left (the identity key alone; no wallet needed); never one
        unlinked here. The addresses renewed."""
        now = now or datetime.now(UTC)
        conn = await self.client.connection()
        unlinked = await self.unlinked()
        renewed: list[str] = []
        for link in await self.verified_wallets(self.client.user, now=now):
            if link.address in unlinked:
                continue
            left = link.expires - int(now.timestamp() * 1000)
            if left >= w.LINK_RENEW_BEFORE.total_seconds() * 1000:
                continue
            record = w.renew_link(link.record, self.client.identity.sign,
                                  expires=w.link_expiry(now))
            await conn.request(f.WalletLinkPut, record=record)
            renewed.append(link.address)
        return renewed

    async def verified_wallets(self, user: bytes, *,
                               now: datetime | None = None) -> list[w.VerifiedLink]:
        """``user``'s wallet bindings, each verified here (signatures, this relay's URL,
        not expired, not issued in the future); forged ones are dropped, and so are our own
        bindings of wallets we unlinked, whatever the relay shows."""
        conn = await self.client.connection()
        answer = await conn.request(f.WalletsGet, user=user)
        assert isinstance(answer, f.WalletLinks)
        found: dict[str, w.VerifiedLink] = {}
        now = now or datetime.now(UTC)
        unlinked = await self.unlinked() if user == self.client.user else set()
        for record in answer.records:
            try:
                link = w.open_link(record, origins={conn.origin}, now=now)
            except ProtocolError as exc:
                log.warning("dropped a wallet binding the relay gave for %s: %s",
                            user.hex()[:16], exc.message)
                continue
            if link.user != user:
                log.warning("dropped a wallet binding of another identity")
                continue
            if link.address in unlinked:
                continue
            old = found.get(link.address)
            if old is None or link.issued_at > old.issued_at:
                found[link.address] = link
        return sorted(found.values(), key=lambda v: (v.issued_at, v.address))

    async def peer_wallets(self, peer: str) -> tuple[bytes, str, list[w.VerifiedLink]]:
        contact = await self.client.resolve(peer)
        return contact.user, contact.handle or peer, await self.verified_wallets(contact.user)

    async def signin(self, address: str) -> f.Authed:
        """Open a relay connection authenticated by a linked wallet (SIWE) instead of the
        identity key; checks the relay answers for our own identity."""
        from .keys import sign_personal

        key = await self._key(address)
        address = self._address(address)

        def answer(origin: str, challenge: bytes) -> tuple[str, bytes]:
            # origin: the URL dialled (never the relay's announced name) is the SIWE domain
            text = w.auth_siwe(origin, address, challenge, datetime.now(UTC)).text()
            return text, sign_personal(key, text)

        from ..known_relays import known_relays_path

        conn = RelayConnection(self.client.relays.current, user=self.client.user,
                               sign=self.client.identity.sign, wallet_auth=answer,
                               known=known_relays_path(self.client.home))
        authed = await conn.open()
        await conn.close()
        return authed

    # --- holdings -------------------------------------------------------------------------

    async def refresh_balances(self) -> tuple[list[BalanceRow], list[str]]:
        """Read native and configured ERC-20 balances of our wallets on every chain with an
        RPC URL; cache them. (rows, one error line per chain that failed)."""
        addresses = await self.addresses()
        errors: list[str] = []
        rows: list[BalanceRow] = []
        for chain in self.chains().values():
            if not chain.rpc or not addresses:
                continue
            evm = self.evm(chain)
            try:
                now = now_ms()
                for address in addresses:
                    amount = await evm.run(evm.balance, address)
                    rows.append(BalanceRow(chain.chain_id, address, "", chain.symbol,
                                           chain.decimals, amount, now))
                    for symbol, token in chain.tokens.items():
                        _, dec = await evm.run(evm.token_meta, token)
                        amount = await evm.run(evm.token_balance, token, address)
                        # the name from the token list, never the contract's own symbol()
                        rows.append(BalanceRow(chain.chain_id, address,
                                               siwe.to_checksum_address(token), symbol,
                                               dec, amount, now))
            except WalletError as exc:
                errors.append(f"{chain.name}: {exc}")
        async with self.client.cache.transaction():
            for row in rows:
                await self.store.put_balance(row)
        return await self.store.balances(), errors

    async def balances(self) -> list[BalanceRow]:
        return await self.store.balances()

    # --- while the client runs --------------------------------------------------------------

    async def run(self, *, balance_every: float = BALANCE_EVERY,
                  gift_every: float = GIFT_EVERY,
                  sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Renew our wallet bindings and refresh balances every ``balance_every`` s and settle
        pending gifts every ``gift_every`` s, until cancelled; failures are logged and
        retried next time."""
        next_balance = 0.0
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if now >= next_balance:
                next_balance = now + balance_every
                try:
                    for address in await self.renew_links():
                        log.info("renewed the binding of %s", address)
                except (RelayError, RelayUnreachable, ConnectionLost) as exc:
                    log.info("binding renewal: %s", exc)  # tried again next time
                except Exception:
                    log.exception("binding renewal failed")
                try:
                    if await self.addresses():
                        _, errors = await self.refresh_balances()
                        for line in errors:
                            log.info("balance refresh: %s", line)
                except Exception:
                    log.exception("balance refresh failed")
            try:
                for line in await self.track_gifts():
                    log.info("gift tracking: %s", line)
            except Exception:
                log.exception("gift tracking failed")
            await sleep(min(gift_every, max(0.0, next_balance - loop.time())))

