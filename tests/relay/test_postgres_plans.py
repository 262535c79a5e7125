"""PostgreSQL: the hot path's statements stay index lookups when their tables grow
faster than autovacuum analyzes them.

A saturated relay puts 150,000 rows in `sent` (and as many just-deleted ones in
`messages`) within autovacuum's first minute. A plan chosen while those tables were
empty — a generic plan of a statement executed a few times, as asyncpg prepares them —
then read them whole on every batch: send → stored p50 at 1,000 msg/s went from 2 ms to
40 ms after a saturated run (bench.cluster). Here: the statements prepared and run on the
store's own writer connection while the tables are small, then the tables filled behind
the planner's back (autovacuum off for them, no ANALYZE), then the plans read again.

The writer's connection keeps generic plans (PostgresBase.open): these statements must be
index lookups in *any* plan, so the test forces generic ones.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tenchat.relay.storage.postgres import PostgresStore
from tenchat.relay.storage.postgres.messages import _ACK_RUN, _READ_RUN
from tenchat.relay.storage.postgres.queues import READ_SIZES
from tenchat.relay.storage.postgres.upkeep import EXPIRED_MESSAGES
from tests.support.services import postgres_schema, postgres_url
from tests.support.wsclient import async_test

ROWS = 100_000


def _literal(value: Any) -> str:
    """An SQL literal of an argument (EXECUTE takes no bind parameters)."""
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'::bytea"
    if isinstance(value, list):
        kind = "bytea[]" if value and isinstance(value[0], bytes) else "bigint[]"
        return f"ARRAY[{', '.join(map(_literal, value))}]::{kind}"
    return str(int(value))


def _execute(name: str, args: tuple[Any, ...]) -> str:
    return f"EXECUTE {name} ({', '.join(map(_literal, args))})"


def _scans(plan: Any) -> list[tuple[str, str]]:
    """(node type, relation) of every scan in an EXPLAIN (FORMAT JSON) plan."""
    out: list[tuple[str, str]] = []
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        if "Relation Name" in node:
            out.append((node["Node Type"], node["Relation Name"]))
        stack.extend(node.get("Plans", []))
    return out


@async_test
async def test_the_send_and_ack_runs_stay_index_lookups_on_grown_tables() -> None:
    async with postgres_schema("test_plans") as (admin, schema):
        store = PostgresStore(postgres_url(), schema=schema)
        async with store:
            await admin.execute(f'SET search_path = "{schema}"; ALTER TABLE sent SET'
                                " (autovacuum_enabled = off); ALTER TABLE messages SET"
                                " (autovacuum_enabled = off)")
            users = [os.urandom(32) for _ in range(4)]
            read_args = ([os.urandom(32)], [os.urandom(16)], [users[0]], 1, [users[1]], [])
            ack_args = ([0], [users[0]], [1])
            assert store._wpool is not None
            statements = {"read_run": (_READ_RUN, read_args), "ack_run": (_ACK_RUN, ack_args),
                          "read_sizes": (READ_SIZES, ([users[0]],)),
                          "sweep": (EXPIRED_MESSAGES, (1, 100))}
            async with store._wpool.acquire() as conn:
                assert await conn.fetchval("SHOW plan_cache_mode") == "auto"  # as it runs
                await conn.execute("SET plan_cache_mode = force_generic_plan")  # the worst
                for name, (sql, _) in statements.items():
                    await conn.execute(f"PREPARE {name} AS {sql}")
                for _ in range(8):  # past the 5 custom plans before a generic one in auto
                    async with conn.transaction():
                        for name, (_, args) in statements.items():
                            await conn.execute(_execute(name, args))
                # the tables grow: `sent` to ROWS rows, `messages` to ROWS deleted ones
                await admin.execute(
                    "INSERT INTO sent (sender, msg_id, seq, at) SELECT"
                    " decode(md5(i::text), 'hex'), decode(md5((-i)::text), 'hex'), i, 0"
                    f" FROM generate_series(1, {ROWS}) AS i")
                await admin.execute(
                    "INSERT INTO messages (seq, recipient, sender, msg_id, at, body) SELECT"
                    " i, decode(md5(i::text), 'hex'), '\\x00', '\\x00', 0, '\\x00'"
                    f" FROM generate_series(1000000, 1000000 + {ROWS}) AS i;"
                    " DELETE FROM messages WHERE seq % 2 = 0")  # live rows and dead ones
                await admin.execute(
                    "INSERT INTO queue_sizes (recipient, sender, taken, messages, bytes)"
                    " SELECT decode(md5(i::text), 'hex'), '\\x00', false, 1, 1"
                    f" FROM generate_series(1, {ROWS}) AS i")
                scans = []
                for name, (_, args) in statements.items():
                    plan = json.loads(await conn.fetchval(
                        f"EXPLAIN (FORMAT JSON) {_execute(name, args)}"))
                    scans += _scans(plan)
                await conn.execute("DEALLOCATE ALL")
        assert not [rel for kind, rel in scans if kind == "Seq Scan"], scans
        assert {rel for _, rel in scans} >= {"sent", "messages", "queue_sizes"}, scans
