"""The devices screen against a real relay (issue 16): approve a new device from its link
code after its fingerprint is shown, see it listed, remove it after a yes — and the
account's signed list, as the new device reads it from the relay, follows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, Static

from tenchat.client.linking import start_link
from tenchat.client.tui.screens.confirm import ConfirmScreen
from tenchat.client.tui.screens.devices import DevicesScreen
from tenchat.common.identity import fingerprint
from tests.conftest import PASSPHRASE, Cli
from tests.support.relay import RelayProcess
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, in_thread, tui, until
from tests.tui.test_features_live import chat_ready, screen_of

pytestmark = pytest.mark.slow


def names(screen: DevicesScreen) -> list[tuple[str, bool]]:
    return [(row.name, row.this) for row in screen.devices]


@async_test
async def test_approve_and_remove_a_device_from_the_tui(cli: Cli, relay: RelayProcess,
                                                        tmp_path: Path) -> None:
    await in_thread(cli, "alice", "init", "--handle", "alice")
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        await chat_ready(pilot, app)
        await pilot.press("alt+l")
        devices = await screen_of(pilot, app, DevicesScreen)
        await until(pilot, lambda: names(devices) == [("first", True)], what="listed")

        pending = await start_link(tmp_path / "laptop", relay.url, "laptop")
        finishing = asyncio.ensure_future(pending.finish(PASSPHRASE, timeout=30))
        laptop = None
        try:
            await pilot.press("a")
            field = devices.query_one("#device-code", Input)
            await until(pilot, lambda: app.focused is field, what="the code field")
            field.value = pending.text
            await pilot.press("enter")
            confirm = await screen_of(pilot, app, ConfirmScreen)
            assert fingerprint(pending.device.public) in confirm.question
            assert "'laptop'" in confirm.question
            await pilot.press("y")
            laptop = await finishing
            await until(pilot, lambda: names(devices) == [("first", True), ("laptop", False)],
                        timeout=30, what="the laptop listed")
            assert laptop.user != laptop.device_id  # a device of alice's account

            # x on this device is refused; on the laptop, asks, then removes it
            devices.query_one("#devices", OptionList).focus()
            await pilot.press("x")
            hint = devices.query_one("#devices-hint", Static)
            await until(pilot, lambda: "device you are on" in str(hint.content),
                        what="refused")
            await pilot.press("down", "x")
            confirm = await screen_of(pilot, app, ConfirmScreen)
            assert fingerprint(laptop.device_id) in confirm.question
            await pilot.press("y")
            await until(pilot, lambda: names(devices) == [("first", True)], timeout=15,
                        what="the laptop removed")
            async with laptop.cache.transaction():  # the list on the relay, verified
                assert [d.name for d in await laptop.my_devices()] == ["first"]
        finally:
            finishing.cancel()
            if laptop is not None:
                await laptop.close()
