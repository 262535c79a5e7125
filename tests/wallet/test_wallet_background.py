"""While the client runs, wallet balances are read from the chain (every 5 minutes) and
cached; the refresh loop picks up changes on the chain."""

from __future__ import annotations

import asyncio

import pytest

from tenchat.client.service import Client
from tenchat.client.wallet import service as wallet_service
from tests.support.anvil import Anvil
from tests.support.wsclient import async_test

pytestmark = pytest.mark.slow

ETH = 10**18


async def wait_for_balance(client: Client, amount: int, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        rows = await client.wallet.balances()
        if rows and rows[0].amount == amount:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"cached balance never became {amount}: {rows}")


@async_test
async def test_balances_refresh_while_the_client_runs(
        client: Client, anvil: Anvil, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in anvil.env().items():
        monkeypatch.setenv(key, value)
    assert wallet_service.BALANCE_EVERY == 300  # five minutes
    address = await client.wallet.create()
    await asyncio.to_thread(anvil.fund, address, ETH)
    # Client.run refreshes at once, then every BALANCE_EVERY seconds
    running = asyncio.create_task(client.run())
    await wait_for_balance(client, ETH)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)

    loop = asyncio.create_task(client.wallet.run(balance_every=0.3, gift_every=0.1))
    await asyncio.to_thread(anvil.fund, address, ETH)
    await wait_for_balance(client, 2 * ETH)
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    rows = await client.wallet.balances()
    assert [(r.chain_id, r.address, r.token, r.symbol) for r in rows] == [
        (31337, address, "", "ETH")]
