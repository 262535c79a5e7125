"""The wallet: the wallet keys here and whether each is linked to you, balances on every
chain with an RPC URL, and the gifts sent and received with their state read from the
chain — all through the client core's wallet service, as `tenchat wallet` uses it.

Gift states move live: while the screen is open pending gifts are checked every
:data:`GIFT_POLL` seconds (the core also checks every 10 s while the app runs)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Static

from ....common.errors import TenchatError
from ...wallet.service import format_amount
from ..bindings import key_bindings
from ..keys import WALLET_KEYS
from ..social_view import when

__all__ = ["WalletScreen", "GIFT_POLL"]

log = logging.getLogger("tenchat.tui")

GIFT_POLL = 2.0  # seconds between checks of pending gifts while the screen is open
ERRORS = (TenchatError, OSError)


def short(address: str) -> str:
    return address if len(address) <= 14 else f"{address[:8]}…{address[-4:]}"


class WalletScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back"),
                                            *key_bindings(WALLET_KEYS)]

    def __init__(self, client: Any, *, poll: float = GIFT_POLL) -> None:
        super().__init__()
        self.client = client
        self.poll = poll
        self.addresses: list[str] = []
        self.linked: set[str] = set()
        self.gifts: list[Any] = []
        self._checking = False

    def compose(self) -> ComposeResult:
        yield Static(f"Wallet · @{self.client.handle}", id="wallet-title", classes="title")
        with VerticalScroll(id="wallet-body"):
            yield Static("Wallets here", classes="section")
            yield DataTable(id="wallets", cursor_type="row", show_cursor=True)
            yield Static("Balances", classes="section")
            yield DataTable(id="balances", cursor_type="none")
            yield Static("Gifts", classes="section")
            yield DataTable(id="gifts", cursor_type="row")
        yield Static("", id="wallet-status", classes="hint")
        yield Static("c new wallet · i import key · l link to you · g send a gift · "
                     "r refresh · Esc back", id="wallet-hint", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#wallets", DataTable).add_columns("address", "linked to you")
        self.query_one("#balances", DataTable).add_columns("chain", "wallet", "amount",
                                                           "read")
        self.query_one("#gifts", DataTable).add_columns("when", "", "who", "amount",
                                                        "chain", "state")
        self.query_one("#wallets", DataTable).focus()
        self.reload(refresh=False)
        self.set_interval(self.poll, self._tick)

    def _status(self, text: str | Text) -> None:
        self.query_one("#wallet-status", Static).update(
            text if isinstance(text, Text) else Text(text))

    # --- loading ------------------------------------------------------------------------

    @work(group="wallet-load", exclusive=True, exit_on_error=False)
    async def reload(self, refresh: bool = True) -> None:
        """Wallets, links (from the relay), balances and gifts; ``refresh``: read the
        chains first (balances, pending gifts)."""
        wallet = self.client.wallet
        errors: list[str] = []
        self.addresses = await wallet.addresses()
        if self.client.connection_state != "online":
            errors.append("offline: links are checked with the relay once connected")
        else:
            try:
                self.linked = {v.address
                               for v in await wallet.verified_wallets(self.client.user)}
            except ERRORS as exc:
                errors.append(f"links: {exc}")
        if refresh:
            self._status("reading the chains…")
            try:
                _, failed = await wallet.refresh_balances()
                errors += failed
                errors += await wallet.track_gifts()
            except ERRORS as exc:
                errors.append(str(exc))
        self._show_wallets()
        await self._show_balances()
        await self._show_gifts()
        self._status(Text("; ".join(errors), "bold") if errors else "")

    def _show_wallets(self) -> None:
        table = self.query_one("#wallets", DataTable)
        row = table.cursor_row
        table.clear()
        for address in self.addresses:
            table.add_row(address, Text("✔ linked", "green") if address in self.linked
                          else Text("not linked (l links it)", "dim"), key=address)
        if not self.addresses:
            table.add_row(Text("no wallet here yet: c makes one, i imports a key", "dim"), "")
        elif row:
            table.move_cursor(row=min(row, len(self.addresses) - 1))

    async def _show_balances(self) -> None:
        chains = {ch.chain_id: ch for ch in self.client.wallet.chains().values()}
        table = self.query_one("#balances", DataTable)
        table.clear()
        tz, today = getattr(self.app, "tz", None), self.app.today()  # type: ignore[attr-defined]
        rows = await self.client.wallet.balances()
        for b in rows:
            chain = chains.get(b.chain_id)
            name = chain.name if chain else str(b.chain_id)
            table.add_row(name, short(b.address),
                          f"{format_amount(b.amount, b.decimals)} {b.symbol}",
                          when(b.updated_at, tz, today))
        if not rows:
            usable = [ch.name for ch in chains.values() if ch.rpc]
            table.add_row(Text("no balances read yet — r reads them" if usable else
                               "no chain has an RPC URL (HOME/chains.toml)", "dim"), "", "", "")

    async def _show_gifts(self) -> None:
        self.gifts = await self.client.wallet.gifts()
        chains = {ch.chain_id: ch for ch in self.client.wallet.chains().values()}
        table = self.query_one("#gifts", DataTable)
        table.clear()
        tz, today = getattr(self.app, "tz", None), self.app.today()  # type: ignore[attr-defined]
        for g in self.gifts:
            who = await self.client.display_name(g.peer)
            amount = (f"{format_amount(g.amount, g.decimals)} {g.symbol}"
                      if g.amount is not None else "?")
            state = {"confirmed": Text("✔ confirmed", "green"),
                     "failed": Text(f"✘ failed: {g.reason}", "red"),
                     }.get(g.status, Text("… pending", "yellow"))
            chain = chains.get(g.chain_id)
            table.add_row(when(g.created_at, tz, today), "→" if g.outgoing else "←",
                          f"@{who}", amount, chain.name if chain else str(g.chain_id), state,
                          key=f"{g.chain_id}:{g.tx_hash.hex()}")
        if not self.gifts:
            table.add_row(Text("no gifts yet — g sends one", "dim"), "", "", "", "", "")

    def _tick(self) -> None:
        # settling a gift asks the chain and the relay (the parties' verified wallets)
        if self._checking or self.client.connection_state != "online" or \
                not any(g.status == "pending" for g in self.gifts):
            return
        self._checking = True
        self._check_gifts()

    @work(group="wallet-gifts", exit_on_error=False)
    async def _check_gifts(self) -> None:
        try:
            before = {g.tx_hash: g.status for g in self.gifts}
            await self.client.wallet.track_gifts()
            gifts = await self.client.wallet.gifts()
            if gifts != self.gifts:
                await self._show_gifts()
            if any(before.get(g.tx_hash) != g.status for g in self.gifts):
                await self.client.wallet.refresh_balances()  # a gift settled: it moved funds
                await self._show_balances()
        except ERRORS as exc:
            log.info("gift check: %s", exc)
        finally:
            self._checking = False

    # --- actions ------------------------------------------------------------------------

    def _highlighted(self) -> str | None:
        table = self.query_one("#wallets", DataTable)
        if not self.addresses or table.cursor_row >= len(self.addresses):
            return None
        return self.addresses[table.cursor_row]

    def action_create_wallet(self) -> None:
        self._run(self.client.wallet.create(), "made wallet {}")

    def action_import_wallet(self) -> None:
        from .prompt import PromptScreen

        def given(text: str | None) -> None:
            if text and text.strip():
                self._run(self.client.wallet.import_key(text.strip()), "imported wallet {}")

        self.app.push_screen(PromptScreen("Import a wallet key",
                                          placeholder="private key, 0x and 64 hex digits",
                                          hint="Enter imports · Esc cancels", password=True),
                             given)

    def action_link_wallet(self) -> None:
        address = self._highlighted()
        if address is None:
            self.notify("No wallet here to link: c makes one.", severity="warning")
            return
        self._status(f"signing a link of {short(address)} to @{self.client.handle}…")
        self._run(self.client.wallet.link(address), "linked {}",
                  show=lambda link: link.address)

    def action_gift(self) -> None:
        from .gift import GiftScreen

        def reload(sent: object) -> None:
            if sent:
                self.reload(refresh=False)

        self.app.push_screen(GiftScreen(self.client), reload)

    def action_refresh_wallet(self) -> None:
        self.reload(refresh=True)

    @work(group="wallet-action", exclusive=True, exit_on_error=False)
    async def _run(self, request: Any, done: str, show: Any = str) -> None:
        try:
            result = await request
        except ERRORS as exc:
            self._status(Text(str(exc), "bold"))
            self.notify(str(exc), severity="error")
            return
        self.notify(done.format(show(result)))
        self.reload(refresh=False)
