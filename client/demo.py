"""`tenchat demo`: a newcomer's first conversation, with nothing to configure.

Starts a local relay process on SQLite, creates (or reopens) two identities —
``you`` and an ``echo`` bot that answers every message — and opens the TUI as
@you (``--lines``: a line-mode chat on stdin instead). Everything lives under one
folder (``.tenchat-try`` by default) so a second run picks up where the first ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
from pathlib import Path

from ..common.errors import TenchatError
from ..common.textsafe import for_terminal
from .cache import MessageRow
from .keystore import Keystore
from .service import Client

YOU, BOT = "you", "echo"


async def start_relay(data: Path) -> tuple[subprocess.Popen[str], str]:
    """Run `tenchat-relay serve` as its own process (client code never imports the relay)."""
    data.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenchat.relay", "serve", "--host", "127.0.0.1", "--port", "0",
         "--data", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 15)
    if not line.startswith("listening on "):
        proc.kill()
        raise TenchatError("the demo relay did not start")
    return proc, line.split()[-1]


async def open_identity(home: Path, relay: str, handle: str, passphrase: str) -> Client:
    if Keystore.in_home(home).exists():
        return await Client.unlock(home, relay, passphrase)
    return await Client.create(home, relay, handle, passphrase)


def passphrase_for(where: Path) -> str:
    """A random passphrase kept beside the demo identities (they are throwaway)."""
    path = where / "passphrase"
    if not path.exists():
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip()


async def echo_bot(bot: Client) -> None:
    async def reply(rows: list[MessageRow]) -> None:
        for row in rows:
            await bot.queue_text(row.peer, f"echo: {row.text}")
        await bot.flush_outbox()
        for peer in dict.fromkeys(row.peer for row in rows):
            await bot.mark_read(peer)  # read receipts: the demo shows ✓ → ✓✓ → ◉

    await bot.sync(follow=True, on_messages=reply)


async def run_demo(where: Path) -> None:
    proc, url = await start_relay(where / "relay")
    you = bot = None
    try:
        passphrase = passphrase_for(where)
        bot = await open_identity(where / BOT, url, BOT, passphrase)
        you = await open_identity(where / YOU, url, YOU, passphrase)
        bot_task = asyncio.create_task(echo_bot(bot))

        def show(rows: list[MessageRow]) -> None:
            for row in rows:
                print(f"  @{BOT}: {for_terminal(row.text)}", flush=True)

        async def printer(rows: list[MessageRow]) -> None:
            rows = await you.unshown()  # type: ignore[union-attr]
            show(rows)
            await you.mark_shown(rows)  # type: ignore[union-attr]

        you_task = asyncio.create_task(you.sync(follow=True, on_messages=printer))
        print(f"tenchat demo — relay {url}, data in {where}\n"
              f"You are @{YOU}; @{BOT} answers every message, end-to-end encrypted.\n"
              f"Type a message and press Enter; Ctrl-D or /quit to leave.\n"
              f"Scripts can join in: tenchat --home {where / YOU} "
              f"--passphrase-file {where / 'passphrase'} --relay {url} history {BOT}\n",
              flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.strip() == "/quit":
                break
            text = line.rstrip("\n")
            if text.strip():
                await you.send_text(BOT, text)
        await asyncio.sleep(0.3)  # let a last echo arrive
        for task in (bot_task, you_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TenchatError):
                await task
    finally:
        for client in (you, bot):
            if client is not None:
                await client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def run_demo_tui(where: Path) -> None:
    """The demo in the TUI: you are @you, the echo bot answers from a background task."""
    from .tui.app import create_app  # only here: the line mode never loads Textual

    proc, url = await start_relay(where / "relay")
    you = bot = None
    try:
        passphrase = passphrase_for(where)
        bot = await open_identity(where / BOT, url, BOT, passphrase)
        you = await open_identity(where / YOU, url, YOU, passphrase)
        if not any(conv.handle == BOT for conv in await you.conversations()):
            await you.start_conversation(BOT)
        bot_task = asyncio.create_task(echo_bot(bot))
        app = create_app(where / YOU, url, client=you)
        await app.run_async()
        bot_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TenchatError):
            await bot_task
    finally:
        for client in (you, bot):
            if client is not None:
                await client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
