"""PostgreSQL: the token buckets that rate limits share across nodes (relay/shared_limits.py).

One statement per report, whatever the number of keys: the rows go in as arrays, each
bucket is refilled by the database's clock (so nodes' clocks don't matter), what the
node spent is taken, and the new balance comes back. The keys are locked in one order
(sorted), so two nodes reporting at once never deadlock. Not through the writer: a
report must not wait behind a batch of messages, and the table is unlogged, so its
commit waits for no disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .base import PostgresBase

__all__ = ["Rates"]

SHARED_MS: Final = 2000  # another node spent on a key within this: it is shared

_NOW: Final = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

# The new row's `tokens` is burst - spent; on conflict the spent amount is read back as
# excluded.burst - excluded.tokens (the insert carries no column of its own for it).
_SPEND: Final = f"""
INSERT INTO rate_buckets AS b (kind, key, rate, burst, tokens, stamp, node)
SELECT t.kind, t.key, t.rate, t.burst, t.burst - t.spent, {_NOW}, $6
FROM unnest($1::text[], $2::bytea[], $3::float8[], $4::float8[], $5::float8[])
    AS t(kind, key, rate, burst, spent)
ORDER BY t.kind, t.key
ON CONFLICT (kind, key) DO UPDATE SET
    tokens = least(excluded.burst,
                   b.tokens + greatest(0, excluded.stamp - b.stamp) * excluded.rate / 1000.0)
             - (excluded.burst - excluded.tokens),
    rate = excluded.rate, burst = excluded.burst, stamp = excluded.stamp,
    node = excluded.node,
    shared_at = CASE WHEN b.node <> excluded.node THEN excluded.stamp ELSE b.shared_at END
RETURNING kind, key, tokens, shared_at > stamp - {SHARED_MS}
"""


class Rates(PostgresBase):
    shares_limits = True

    async def spend_limits(self, node: str, spent: Sequence[tuple[str, bytes, float, float, float]]
                           ) -> list[tuple[float, bool]]:
        columns: list[list[Any]] = [list(c) for c in zip(*spent, strict=True)]
        rows = await self._read(_SPEND, *(columns or [[] for _ in range(5)]), node)
        answers = {(kind, bytes(key)): (float(tokens), bool(shared))
                   for kind, key, tokens, shared in rows}
        return [answers[(kind, key)] for kind, key, *_ in spent]

    async def prune_limits(self) -> int:
        rows = await self._read(
            f"DELETE FROM rate_buckets WHERE tokens + ({_NOW} - stamp) * rate / 1000.0 >= burst"
            " RETURNING 1")
        return len(rows)
