"""The client's wallet core: keys, links, holdings and gifts, for the CLI and the TUI.

Imported by the client core, so it imports no web3 at module level: the modules
that need web3 or eth-account (``evm``, ``keys``) are imported inside the methods
that use them. Every binding is verified here before a wallet is shown or paid,
and gift amounts are read from the chain, never from a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ...common import content as c
from ...common import frames as f
from ...common import siwe
from ...common import wallets as w
from ...common.errors import ErrorCode, ProtocolError
from ..connection import ConnectionLost, RelayConnection, RelayError, RelayUnreachable
from . import WalletError
from .chains import Chain, find_chain, load_chains
from .store import BalanceRow, GiftRow, WalletStore

if TYPE_CHECKING:
    from ..events import Event
    from ..service import Client

__all__ = ["WalletService", "GiftPlan", "format_amount", "parse_amount", "gift_text",
           "token_symbol"]

log = logging.getLogger("tenchat.client.wallet")

BALANCE_EVERY = 300.0  # seconds between balance refreshes while the client runs
GIFT_EVERY = 10.0  # seconds between checks of pending gifts while the client runs


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


def format_amount(amount: int, decimals: int) -> str:
    if decimals == 0:
        return str(amount)
    q = Decimal(amount).scaleb(-decimals)
    text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def parse_amount(text: str, decimals: int) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise WalletError(f"{text!r} is not an amount") from None
    if not value.is_finite() or value <= 0:
        raise WalletError("the amount must be a positive number")
    units = value.scaleb(decimals)
    if units != units.to_integral_value():
        raise WalletError(f"{text} has more than {decimals} decimals")
    return int(units)


def token_symbol(chain: Chain, token: str) -> str | None:
    """The token list's name for contract ``token`` on ``chain`` (chains.toml, one address
    per symbol and chain); None for any other contract: an unknown token."""
    wanted = token.lower()
    for symbol, address in chain.tokens.items():
        if address.lower() == wanted:
            return symbol
    return None


def gift_text(chain_id: int, tx_hash: bytes, status: str = "") -> str:
    """A gift's chat row: where to look, then (once settled) what the chain says."""
    return f"[gift] {status + ' · ' if status else ''}chain {chain_id} tx 0x{tx_hash.hex()}"


@dataclass(frozen=True)
class GiftPlan:
    """A transfer ready to sign: shown to the user exactly, then signed as is."""

    peer: bytes
    handle: str
    chain: Chain
    sender: str
    recipient: str
    token: str | None  # None: the native coin
    symbol: str  # from the token list (chains.toml); '' for a token not in it
    decimals: int
    amount: int
    tx: dict[str, Any]  # the unsigned EIP-1559 transaction
    linked_at: int = 0  # ms: the Issued At of the recipient's binding
    link_expires: int = 0  # ms: when that binding lapses unless its owner renews it

    @property
    def unknown_token(self) -> bool:
        """A token contract not in the configured token list: shown by address only."""
        return self.token is not None and not self.symbol

    @property
    def max_fee(self) -> int:
        return int(self.tx["gas"]) * int(self.tx["maxFeePerGas"])

    def describe(self) -> dict[str, Any]:
        tx = {k: (("0x" + v.hex()) if isinstance(v, bytes) else v) for k, v in self.tx.items()}
        return {"to": self.handle, "chain": self.chain.name, "chain_id": self.chain.chain_id,
                "from": self.sender, "recipient": self.recipient,
                "token": self.token or "", "symbol": self.symbol,
                "unknown_token": self.unknown_token,
                "linked_at": self.linked_at, "link_expires": self.link_expires,
                "amount": format_amount(self.amount, self.decimals),
                "amount_units": str(self.amount),
                "max_fee": format_amount(self.max_fee, self.chain.decimals),
                "transaction": tx}


class WalletService:
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
            added = await self.store.put_key(address, key, _now_ms())
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
                now = _now_ms()
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

    # --- gifts ----------------------------------------------------------------------------

    async def plan_gift(self, peer: str, amount: str, token: str | None = None,
                        chain: str | None = None, sender: str | None = None) -> GiftPlan:
        """Everything checked and the transaction built, nothing signed yet."""
        ch = self.chain(chain)
        user, handle, links = await self.peer_wallets(peer)
        if user == self.client.user:
            raise WalletError("a gift to yourself is not a gift")
        if not links:
            raise WalletError(f"@{handle} has no verified wallet linked; nothing was sent")
        newest = links[-1]  # the newest binding that verifies (unexpired, not future)
        recipient = newest.address
        from_addr = self._address(sender) if sender else await self.default_address()
        key = await self._key(from_addr)
        del key  # only checked to exist; signing comes after the user confirms
        evm = self.evm(ch)
        token_addr: str | None = None
        symbol, decimals = ch.symbol, ch.decimals
        if token is not None and token.upper() != ch.symbol.upper():
            token_addr = ch.tokens.get(token.upper(), token)
            if not w.is_address(token_addr):
                raise WalletError(f"unknown token {token!r} on {ch.name}: give its contract "
                                  "address or add it to chains.toml")
            token_addr = siwe.to_checksum_address(token_addr)
            # Named only from the token list: a contract's own symbol() and decimals() can
            # say anything, so an unknown token's amount is in its raw units.
            symbol = token_symbol(ch, token_addr) or ""
            decimals = (await evm.run(evm.token_meta, token_addr))[1] if symbol else 0
        units = parse_amount(amount, decimals)
        if token_addr is not None:
            have = await evm.run(evm.token_balance, token_addr, from_addr)
            if have < units:
                raise WalletError(f"insufficient funds: {from_addr} holds "
                                  f"{format_amount(have, decimals)} {symbol}, the gift is "
                                  f"{format_amount(units, decimals)}")
        else:
            have = await evm.run(evm.balance, from_addr)
            if have < units:
                raise WalletError(f"insufficient funds: {from_addr} holds "
                                  f"{format_amount(have, decimals)} {symbol} on {ch.name}")
        tx = await evm.run(evm.build_transfer, from_addr, recipient, units, token_addr)
        native = await evm.run(evm.balance, from_addr)
        need = int(tx["gas"]) * int(tx["maxFeePerGas"]) + (units if token_addr is None else 0)
        if native < need:
            raise WalletError(f"insufficient funds for gas: {from_addr} holds "
                              f"{format_amount(native, ch.decimals)} {ch.symbol}, needs up to "
                              f"{format_amount(need, ch.decimals)}")
        return GiftPlan(user, handle, ch, from_addr, recipient, token_addr, symbol, decimals,
                        units, tx, linked_at=newest.issued_at, link_expires=newest.expires)

    async def send_gift(self, plan: GiftPlan) -> GiftRow:
        """Sign the planned transaction here, submit it, and only then tell the peer."""
        key = await self._key(plan.sender)
        evm = self.evm(plan.chain)
        from .evm import Evm

        raw, tx_hash = Evm.sign(plan.tx, key)
        sent = await evm.run(evm.send_raw, raw)
        if sent != tx_hash:
            raise WalletError("the RPC reported another transaction hash than the one signed")
        client = self.client
        msg_id = os.urandom(16)
        now = _now_ms()
        async with client.cache.transaction():
            await self.store.add_gift(plan.chain.chain_id, tx_hash, plan.peer, True, msg_id, now)
        body = c.encode_content(c.Gift(id=msg_id, chain_id=plan.chain.chain_id,
                                       tx_hash=tx_hash, sent_at=now))
        message = await client.queue_message(plan.peer, msg_id, now, 0, body,
                                              gift_text(plan.chain.chain_id, tx_hash),
                                              reply_to=None)
        from ..errors import QueuedOffline

        # Submitted: the gift stands even if the relay is away; the message waits in the
        # outbox and goes out with the next command that reaches the relay.
        with contextlib.suppress(QueuedOffline):
            await client.send_queued(plan.peer, message)
        gift = await self.store.gift(plan.chain.chain_id, tx_hash)
        assert gift is not None
        return gift

    async def receive_gift(self, author: bytes, content: c.Gift, new: list[Any],
                           receipts: dict[Any, list[bytes]], events: list[Event]) -> None:
        """A peer's gift message (in the open receive transaction): a chat row and a gift
        to track; what it is worth is read from the chain later."""
        from ..cache import DELIVERED, MessageRow
        from ..events import MessageAdded

        now = _now_ms()
        row = MessageRow(content.id, author, False, gift_text(content.chain_id, content.tx_hash),
                         content.sent_at, now, DELIVERED)
        if await self.client.cache.messages.add(row, shown=False):
            await self.store.add_gift(content.chain_id, content.tx_hash, author, False,
                                      content.id, now)
            row = (await self.client.cache.messages.get(author, content.id)) or row
            new.append(row)
            receipts.setdefault((author, None), []).append(content.id)
            events.append(MessageAdded(row))

    async def track_gifts(self) -> list[str]:
        """Settle pending gifts from the chain (receipt and Transfer logs); one error line
        per gift that could not be checked now."""
        errors: list[str] = []
        for gift in await self.store.gifts(pending_only=True):
            try:
                await self._track(gift)
            except (WalletError, RelayError, RelayUnreachable, ConnectionLost) as exc:
                errors.append(f"gift 0x{gift.tx_hash.hex()[:12]}…: {exc}")
        return errors

    async def _track(self, gift: GiftRow) -> None:
        chain = find_chain(self.chains(), gift.chain_id)
        evm = self.evm(chain)
        receipt, moved = await evm.run(evm.transfers_of, gift.tx_hash)
        if receipt is None:
            return  # not mined yet
        peer_links = {link.address for link in await self.verified_wallets(gift.peer)}
        mine = set(await self.addresses()) | {
            link.address for link in await self.verified_wallets(self.client.user)}
        senders, recipients = (mine, peer_links) if gift.outgoing else (peer_links, mine)
        status, reason = "confirmed", ""
        match = [t for t in moved if t.sender in senders and t.recipient in recipients]
        if receipt["status"] != 1:
            status, reason = "failed", "the transaction reverted"
        elif not match:
            status, reason = "failed", ("the transaction moved nothing between the two "
                                        "verified wallets")
        token, symbol, decimals, amount, sender, recipient = "", chain.symbol, 18, None, "", ""
        if match:
            t = match[0]
            token, sender, recipient, amount = t.token, t.sender, t.recipient, t.value
            if token:
                # Named only from the configured token list (address per chain); any other
                # contract is an unknown token, shown by address in raw units: its own
                # symbol() and decimals() can claim to be anything.
                known = token_symbol(chain, token)
                if known is not None:
                    _, decimals = await evm.run(evm.token_meta, token)
                    symbol = known
                else:
                    symbol, decimals = "", 0
        async with self.client.cache.transaction():
            await self.store.settle_gift(
                gift.chain_id, gift.tx_hash, status=status, token=token, symbol=symbol,
                decimals=decimals, amount=amount if status == "confirmed" else None,
                sender=sender, recipient=recipient, block=int(receipt["blockNumber"]),
                reason=reason, now=_now_ms())
            what = (f"{format_amount(amount or 0, decimals)} {symbol}" if symbol or not token
                    else f"{amount or 0} units of unknown token {token}")
            shown = f"{what} confirmed" if status == "confirmed" else f"failed: {reason}"
            changed = await self.store.set_message_text(
                gift.peer, gift.msg_id, gift_text(gift.chain_id, gift.tx_hash, shown))
        if changed:
            from ..events import MessageChanged

            self.client.emit(MessageChanged(gift.peer, gift.msg_id))

    async def gifts(self) -> list[GiftRow]:
        return await self.store.gifts()

    # --- NFTs ------------------------------------------------------------------------------

    async def nfts(self, contract: str, chain: str | None = None,
                   peer: str | None = None) -> list[tuple[str, int]]:
        """(wallet, token id) of every ERC-721 token of ``contract`` held by the verified
        wallets of ``peer`` (ours if None)."""
        ch = self.chain(chain)
        contract = self._address(contract)
        user = self.client.user if peer is None else (await self.client.resolve(peer)).user
        wallets = [v.address for v in await self.verified_wallets(user)]
        if peer is None:
            wallets = sorted(set(wallets) | set(await self.addresses()))
        evm = self.evm(ch)
        found: list[tuple[str, int]] = []
        for address in wallets:
            found += [(address, i) for i in await evm.run(evm.nfts_of, contract, address)]
        return found

    async def nft_holder(self, user: bytes, nft: Any) -> str | None:
        """Which verified wallet of ``user`` holds ``nft`` (a social.NftAvatar) now, per the
        chain; None if none does, or if it can't be checked (then it is not shown)."""
        async def owner() -> str | None:
            ch = find_chain(self.chains(), nft.chain_id)
            evm = self.evm(ch)
            return await evm.run(evm.owner_of, nft.contract, int(nft.token_id))

        # the chain and the relay asked at once: one round trip's wait instead of two
        asked = asyncio.ensure_future(owner())
        try:
            links = await self.verified_wallets(user)
        finally:
            try:
                holder = await asked
            except WalletError as exc:
                log.info("NFT avatar not checked: %s", exc)
                holder = None
        wallets = {v.address for v in links}
        return holder if holder in wallets else None

    async def nft_image(self, user: bytes, nft: Any) -> bytes | None:
        """The picture of ``user``'s NFT avatar (a social.NftAvatar) while a verified wallet
        of theirs holds it (None otherwise): from ``HOME/nft-cache`` when fetched before,
        else its tokenURI metadata and image (nft_media; WalletError if they can't be
        had)."""
        from . import nft_media

        if await self.nft_holder(user, nft) is None:
            return None
        home = self.client.home
        hit = await asyncio.to_thread(nft_media.cached, home, nft.chain_id, nft.contract,
                                      nft.token_id)
        if hit is not None:
            return hit
        ch = find_chain(self.chains(), nft.chain_id)
        evm = self.evm(ch)
        uri = await evm.run(evm.token_uri, nft.contract, int(nft.token_id))
        if not uri:
            raise WalletError(f"token {nft.token_id} of {nft.contract} has no tokenURI")
        gateway = nft_media.gateway()
        raw = await asyncio.to_thread(nft_media.read_uri, uri, nft_media.MAX_METADATA
                                      if not uri.startswith("data:image") else
                                      nft_media.MAX_IMAGE, gateway)
        data: bytes | None
        if uri.startswith("data:image"):
            data = raw  # the URI is the picture itself
        else:
            image_uri, inline = nft_media.image_from_metadata(raw)
            data = inline if image_uri is None else await asyncio.to_thread(
                nft_media.read_uri, image_uri, nft_media.MAX_IMAGE, gateway)
        assert data is not None
        await asyncio.to_thread(nft_media.store, home, nft.chain_id, nft.contract,
                                nft.token_id, data)
        return data

    async def set_nft_avatar(self, contract: str, token_id: int,
                             chain: str | None = None) -> Any:
        """Show an owned NFT as avatar: only one a verified wallet of ours holds."""
        from ...common.social import NftAvatar

        ch = self.chain(chain)
        nft = NftAvatar(chain_id=ch.chain_id, contract=self._address(contract),
                        token_id=str(token_id))
        if await self.nft_holder(self.client.user, nft) is None:
            raise WalletError(f"none of your linked wallets holds token {token_id} of "
                              f"{nft.contract} on {ch.name}")
        return await self.client.social.set_profile(nft_avatar=nft)

    # --- NFT-gated groups ------------------------------------------------------------------

    async def holds(self, user: bytes, gate: w.NftGate) -> str | None:
        """A verified wallet of ``user`` that holds a token of the gate's contract, per the
        chain; None if none does."""
        evm = self.evm(find_chain(self.chains(), gate.chain_id))
        for link in await self.verified_wallets(user):
            if await evm.run(evm.nft_balance, gate.contract, link.address) > 0:
                return link.address
        return None

    async def check_gate(self, raw_gate: bytes, users: list[bytes]) -> None:
        """The admin's check before adding ``users`` to a gated group."""
        gate = w.decode_gate(raw_gate)
        for user in users:
            if await self.holds(user, gate) is None:
                name = await self.client.display_name(user)
                raise WalletError(f"@{name} holds no token of {gate.contract} (chain "
                                  f"{gate.chain_id}) in a verified wallet; this group is "
                                  "NFT-gated")

    async def set_gate(self, group_name: str, contract: str, chain: str | None) -> w.NftGate:
        ch = self.chain(chain)
        gate = w.NftGate(chain_id=ch.chain_id, contract=self._address(contract))
        evm = self.evm(ch)
        await evm.run(evm.nft_balance, gate.contract, gate.contract)  # it is an ERC-721 here
        group = await self.client.groups.require(group_name)
        await self.client.groups._change(group, "meta", gate=w.encode_gate(gate))
        return gate

    async def gate_status(self, group_name: str) -> tuple[w.NftGate, dict[bytes, str | None]]:
        """A member's re-check: each member's holding wallet (None: holds none now)."""
        group = await self.client.groups.require(group_name)
        await self.client.groups._catch_up(group)
        state = await self.client.groups.state(group)
        if state is None or not state.gate:
            raise WalletError(f"group {group_name!r} is not NFT-gated")
        gate = w.decode_gate(state.gate)
        return gate, {user: await self.holds(user, gate) for user in state.roles}

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

