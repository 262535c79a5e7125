"""Contract hooks: a long-running bot that posts a contract's events into a group once
they are ``confirmations`` blocks deep, so a reorg shallower than that never posts an
event that did not happen. The cursor (next block to read) is kept in the cache, so a
restarted bot goes on where it stopped."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi import decode as abi_decode

from ...common.siwe import to_checksum_address
from . import WalletError
from .evm import event_topic

if TYPE_CHECKING:
    from ..service import Client
    from .chains import Chain

__all__ = ["EventSpec", "OtherShape", "parse_event", "decode_log", "watch"]

_PARAM_RE = re.compile(r"\s*([A-Za-z0-9_\[\]]+)(\s+indexed)?(?:\s+([A-Za-z_][A-Za-z0-9_]*))?\s*")


@dataclass(frozen=True)
class EventSpec:
    name: str
    params: list[tuple[str, bool, str]]  # (type, indexed, name)

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(t for t, _, _ in self.params)})"

    @property
    def topic(self) -> bytes:
        return event_topic(self.signature)


def parse_event(text: str) -> EventSpec:
    """``Transfer(address indexed from, address indexed to, uint256 value)``."""
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*", text)
    if m is None:
        raise WalletError("an event is NAME(type [indexed] [name], …), e.g. "
                          "'Transfer(address indexed from, address indexed to, uint256 value)'")
    params: list[tuple[str, bool, str]] = []
    body = m.group(2).strip()
    for i, part in enumerate(body.split(",") if body else []):
        p = _PARAM_RE.fullmatch(part)
        if p is None:
            raise WalletError(f"bad event parameter {part.strip()!r}")
        params.append((p.group(1), bool(p.group(2)), p.group(3) or f"arg{i}"))
    return EventSpec(m.group(1), params)


def _show(kind: str, value: Any) -> str:
    if kind == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


class OtherShape(WalletError):
    """A log with the event's topic but not its shape (e.g. an ERC-721 Transfer, whose
    token id is a fourth topic, read with the ERC-20 signature): skipped, not posted."""


def decode_log(spec: EventSpec, log: Any) -> dict[str, str]:
    """The event's parameters by name (indexed dynamic values are only their hash);
    OtherShape if the log has another number of topics or data that does not decode."""
    topics = [bytes(t) for t in log["topics"][1:]]
    indexed = sum(1 for _, ix, _ in spec.params if ix)
    if len(topics) != indexed:
        raise OtherShape(f"{len(topics)} indexed values, {spec.signature} has {indexed}")
    plain = [(t, n) for t, ix, n in spec.params if not ix]
    try:
        values = abi_decode([t for t, _ in plain], bytes(log["data"])) if plain else ()
    except Exception as exc:  # eth_abi's DecodingError family, or a bad type name
        raise OtherShape(f"the data does not decode as {spec.signature}: {exc}") from None
    out: dict[str, str] = {}
    plain_values = iter(values)
    for kind, indexed, name in spec.params:
        if indexed:
            raw = topics.pop(0)
            static = kind in ("address", "bool") or re.fullmatch(r"u?int\d*|bytes\d+", kind)
            out[name] = _show(kind, abi_decode([kind], raw)[0]) if static else "0x" + raw.hex()
        else:
            out[name] = _show(kind, next(plain_values))
    return out


async def watch(client: Client, chain: Chain, contract: str, spec: EventSpec, group: bytes,
                *, confirmations: int, interval: float = 4.0,
                on_post: Callable[[dict[str, Any]], Awaitable[None] | None] | None = None,
                from_block: int | None = None,
                on_start: Callable[[int], None] | None = None,
                on_skip: Callable[[int, int, str], None] | None = None) -> None:
    """Post each event once it has ``confirmations`` blocks on top of its block; forever.
    A log of another shape is skipped and counted (``on_skip(block, skipped so far,
    why)``), and the cursor moves past it all the same, so a restarted bot does not stop
    at it again."""
    from .evm import Evm

    evm = Evm(chain)
    contract = to_checksum_address(contract)
    store = client.wallet.store
    key = (chain.chain_id, contract, spec.signature, group)
    cursor = await store.watch_cursor(*key)
    if cursor is None:
        cursor = from_block if from_block is not None else await evm.run(evm.block_number) + 1
    if on_start is not None:
        on_start(cursor)
    skipped = 0
    while True:
        head = await evm.run(evm.block_number)
        safe = head - confirmations  # blocks with `confirmations` blocks on top
        if safe >= cursor:
            logs = await evm.run(evm.logs, contract, ["0x" + spec.topic.hex()], cursor, safe)
            for log in sorted(logs, key=lambda lg: (lg["blockNumber"], lg["logIndex"])):
                try:
                    values = decode_log(spec, log)
                except OtherShape as exc:
                    skipped += 1
                    if on_skip is not None:
                        on_skip(int(log["blockNumber"]), skipped, str(exc))
                    continue
                shown = ", ".join(f"{k}={v}" for k, v in values.items())
                text = (f"[{spec.name}] {shown} (block {log['blockNumber']}, "
                        f"tx 0x{bytes(log['transactionHash']).hex()})")
                await client.send_text_to(group, text)
                if on_post is not None:
                    result = on_post({"event": spec.name, "values": values,
                                      "block": int(log["blockNumber"]),
                                      "tx_hash": "0x" + bytes(log["transactionHash"]).hex()})
                    if asyncio.iscoroutine(result):
                        await result
            cursor = safe + 1
            async with client.cache.transaction():
                await store.set_watch_cursor(*key, cursor)
        await asyncio.sleep(interval)
