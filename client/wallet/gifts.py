"""Gifts: plan a transfer to a contact's verified wallet, sign and send it, announce it
in the chat, and settle it from the chain (amounts are read from the chain, never from a
message). Mixed into WalletService (service.py)."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ...common import content as c
from ...common import siwe
from ...common import wallets as w
from ..connection import ConnectionLost, RelayError, RelayUnreachable
from ..message_rules import gift_text
from . import WalletError
from .chains import Chain, find_chain
from .parts import WalletParts
from .store import GiftRow

if TYPE_CHECKING:
    from ..events import Event
    from ..rules import Incoming

log = logging.getLogger("tenchat.client.wallet")

__all__ = ["GiftsMixin", "GiftPlan", "format_amount", "parse_amount", "gift_text",
           "token_symbol", "now_ms"]


def now_ms() -> int:
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


class GiftsMixin(WalletParts):
    """The gift part of WalletService; uses its chains, keys and verified links."""

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
        now = now_ms()
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

    async def receive_gift(self, item: Incoming, new: list[Any],
                           receipts: dict[Any, list[bytes]], events: list[Event]) -> None:
        """A peer's gift message (in the open receive transaction): the rules decide
        (client/message_rules.py: a chat row and a gift to track), this writes."""
        from ..message_rules import AddRow, MessageFacts, TrackGift, apply_gift

        assert isinstance(item.content, c.Gift)
        cache = self.client.cache
        now = now_ms()
        known = await cache.messages.get(item.author, item.content.id) is not None
        effects = apply_gift(MessageFacts(now, known), item)
        stored = {}
        for write in effects.writes:
            match write:
                case AddRow(row):
                    if (kept := await cache.messages.add_stored(row)) is None:
                        return
                    stored[row.id] = kept
                case TrackGift(chain_id, tx_hash, peer, msg_id, at):
                    await self.store.add_gift(chain_id, tx_hash, peer, False, msg_id, at)
        effects.deliver(stored, new, receipts, events)

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
                reason=reason, now=now_ms())
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

