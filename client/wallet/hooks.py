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

__all__ = ["EventSpec", "parse_event", "decode_log", "watch"]

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


def decode_log(spec: EventSpec, log: Any) -> dict[str, str]:
    """The event's parameters by name (indexed dynamic values are only their hash)."""
    topics = [bytes(t) for t in log["topics"][1:]]
    plain = [(t, n) for t, ix, n in spec.params if not ix]
    values = abi_decode([t for t, _ in plain], bytes(log["data"])) if plain else ()
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
                on_start: Callable[[int], None] | None = None) -> None:
    """Post each event once it has ``confirmations`` blocks on top of its block; forever."""
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
    while True:
        head = await evm.run(evm.block_number)
        safe = head - confirmations  # blocks with `confirmations` blocks on top
        if safe >= cursor:
            logs = await evm.run(evm.logs, contract, ["0x" + spec.topic.hex()], cursor, safe)
            for log in sorted(logs, key=lambda lg: (lg["blockNumber"], lg["logIndex"])):
                values = decode_log(spec, log)
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
            async with client._crypto_lock:
                await store.set_watch_cursor(*key, cursor)
                await client.cache.commit()
        await asyncio.sleep(interval)
