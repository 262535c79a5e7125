"""The service fixtures (tests/support/services.py): they find PostgreSQL and NATS,
skip with one line when they are missing, and fail instead under .ci/run."""

from __future__ import annotations

import pytest

from tests.support import services
from tests.support.services import NATS_ENV, POSTGRES_ENV, REQUIRE_ENV, free_port


def _unused_url(scheme: str) -> str:
    return f"{scheme}://127.0.0.1:{free_port()}"  # bound, then released: nobody listens


def test_a_missing_service_skips_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    monkeypatch.setenv(NATS_ENV, url := _unused_url("nats"))
    with pytest.raises(pytest.skip.Exception) as skipped:
        services.nats_url()
    message = str(skipped.value)
    assert "\n" not in message
    assert message.startswith(f"NATS not reachable at {url} (") and NATS_ENV in message


def test_a_missing_service_fails_where_services_are_required(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    monkeypatch.setenv(POSTGRES_ENV, _unused_url("postgresql"))
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL not reachable .* required"):
        services.postgres_url()


@pytest.mark.asyncio
async def test_the_services_answer() -> None:
    """A real query and a real publish: what the cluster tests stand on is there."""
    import asyncpg
    import nats

    conn = await asyncpg.connect(services.postgres_url())
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
    nc = await nats.connect(services.nats_url())
    try:
        sub = await nc.subscribe("tenchat.test.services")
        await nc.publish("tenchat.test.services", b"ping")
        msg = await sub.next_msg(timeout=5)
        assert msg.data == b"ping"
    finally:
        await nc.close()
