"""Send a gift: recipient, amount, token and chain; then an explicit confirmation of
exactly what will be signed — amount, chain, the recipient's verified wallet address,
the paying wallet and the network fee — before anything is signed.

``GiftScreen(client, "bob")`` opens with the recipient filled in. The core plans the
transfer (``wallet.plan_gift``: the recipient's newest verified wallet binding, funds and
gas checked, nothing signed), then ``wallet.send_gift`` signs, submits and tells the peer
in chat — the calls `tenchat gift` makes."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from ....common.errors import TenchatError

__all__ = ["GiftScreen", "confirmation"]


def confirmation(plan: Any) -> Table:
    """What the user agrees to sign, every field spelled out."""
    shown = plan.describe()
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("amount", Text(f"{shown['amount']} {plan.symbol}", "bold"))
    if plan.token:
        table.add_row("token", plan.token)
    table.add_row("chain", f"{plan.chain.name} (chain id {plan.chain.chain_id})")
    table.add_row("to", f"@{plan.handle}")
    table.add_row("address", Text(plan.recipient, "bold"))
    table.add_row("", Text(f"@{plan.handle}'s verified wallet (newest binding)", "dim"))
    table.add_row("from", plan.sender)
    table.add_row("max fee", f"{shown['max_fee']} {plan.chain.symbol}")
    return table


class GiftScreen(ModalScreen[Any]):
    """Dismisses with the GiftRow sent, or None."""

    BINDINGS = [Binding("escape", "back", "Cancel")]

    def __init__(self, client: Any, handle: str = "") -> None:
        super().__init__()
        self.client = client
        self.handle = handle.lstrip("@")
        self.plan: Any = None

    def compose(self) -> ComposeResult:
        chains = [(f"{ch.name} ({ch.symbol})", ch.name)
                  for ch in self.client.wallet.chains().values() if ch.rpc]
        with Vertical(classes="dialog wide", id="gift"):
            yield Static("Send a gift", classes="title")
            with Vertical(id="gift-form"):
                yield Input(self.handle, placeholder="@handle of the recipient", id="gift-to")
                yield Input(placeholder="amount, e.g. 0.5", id="gift-amount")
                yield Input(placeholder="token: symbol or 0x contract (empty: the chain's coin)",
                            id="gift-token")
                yield Select(chains or [("no chain has an RPC URL (HOME/chains.toml)", "")],
                             value=chains[0][1] if chains else "", allow_blank=False,
                             disabled=not chains, id="gift-chain")
                yield Static("Enter reviews the gift · Esc cancels", classes="hint")
            with Vertical(id="gift-confirm"):
                yield Static("", id="gift-plan")
                yield Static(Text("Sign and send exactly this? Nothing is signed before "
                                  "you confirm.", "bold"), id="gift-question")
                with Horizontal(classes="buttons"):
                    yield Button("Sign and send (y)", id="gift-yes", variant="warning")
                    yield Button("Back (n)", id="gift-no")
            yield Static("", id="gift-status", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#gift-confirm").display = False
        (self.query_one("#gift-amount", Input) if self.handle
         else self.query_one("#gift-to", Input)).focus()

    def _status(self, text: str, bold: bool = False) -> None:
        self.query_one("#gift-status", Static).update(Text(text, "bold" if bold else ""))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        fields = ["#gift-to", "#gift-amount", "#gift-token"]
        empty = next((f for f in fields[:2] if not self.query_one(f, Input).value.strip()),
                     None)
        if empty is not None:
            self.query_one(empty, Input).focus()
            return
        self._plan()

    @work(group="gift", exclusive=True, exit_on_error=False)
    async def _plan(self) -> None:
        to = self.query_one("#gift-to", Input).value.strip().lstrip("@")
        amount = self.query_one("#gift-amount", Input).value.strip()
        token = self.query_one("#gift-token", Input).value.strip() or None
        chain = self.query_one("#gift-chain", Select).value
        self._status(f"checking @{to}'s verified wallet and your funds…")
        try:
            plan = await self.client.wallet.plan_gift(
                to, amount, token, chain if isinstance(chain, str) and chain else None)
        except (TenchatError, OSError) as exc:
            self._status(str(exc), bold=True)
            return
        self.plan = plan
        self.query_one("#gift-plan", Static).update(confirmation(plan))
        self.query_one("#gift-form").display = False
        self.query_one("#gift-confirm").display = True
        self.query_one("#gift-no", Button).focus()  # the safe choice has the focus
        self._status("")

    def on_key(self, event: Any) -> None:
        if self.plan is None:
            return
        if event.key == "y":
            event.stop()
            self._send()
        elif event.key == "n":
            event.stop()
            self.action_back()

    @on(Button.Pressed, "#gift-yes")
    def _yes(self) -> None:
        self._send()

    @on(Button.Pressed, "#gift-no")
    def _no(self) -> None:
        self.action_back()

    def action_back(self) -> None:
        if self.plan is None:
            self.dismiss(None)
            return
        self.plan = None
        self.query_one("#gift-confirm").display = False
        self.query_one("#gift-form").display = True
        self.query_one("#gift-amount", Input).focus()

    @work(group="gift", exclusive=True, exit_on_error=False)
    async def _send(self) -> None:
        plan = self.plan
        if plan is None:
            return
        self.plan = None  # a second y can't sign twice
        self.query_one("#gift-yes", Button).disabled = True
        self._status("signing and submitting…")
        try:
            gift = await self.client.wallet.send_gift(plan)
        except (TenchatError, OSError) as exc:
            self._status(str(exc), bold=True)
            self.query_one("#gift-yes", Button).disabled = False
            self.plan = plan
            return
        self.notify(f"Gift sent to @{plan.handle}: 0x{gift.tx_hash.hex()[:16]}… "
                    "(the wallet screen shows it confirm)")
        self.dismiss(gift)
