"""Notifications for messages the user is not looking at: the terminal bell and a
desktop notification (``notify-send``, run as an asyncio subprocess, never awaited
by the caller). Knows nothing of Textual: the bell is a callable it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import shutil
from collections.abc import Callable

from ...common.textsafe import for_name, for_terminal

__all__ = ["Notifier"]

log = logging.getLogger("tenchat.tui")


class Notifier:
    def __init__(self, bell: Callable[[], None], *, bell_on: bool = True, desktop: bool = True,
                 do_not_disturb: bool = False, notify_send: str | None = "auto") -> None:
        self.bell = bell
        self.bell_on = bell_on
        self.desktop = desktop
        self.do_not_disturb = do_not_disturb
        # Where notify-send is; None: no desktop notifications (looked up once).
        self.notify_send = shutil.which("notify-send") if notify_send == "auto" else notify_send
        self.rung = 0  # bells rung (tests look at it)
        self.sent: list[tuple[str, str]] = []  # desktop notifications started
        self._tasks: set[asyncio.Task[None]] = set()

    def message(self, title: str, body: str, *, in_view: bool, muted: bool,
                mention: bool = False) -> bool:
        """A message arrived; notify unless it is in view, muted or do-not-disturb is on.
        A message that @mentions us notifies even in a muted conversation (not in DND).

        Returns whether anything was notified.
        """
        if in_view or (muted and not mention) or self.do_not_disturb:
            return False
        if self.bell_on:
            self.rung += 1
            self.bell()
        if self.desktop and self.notify_send:
            self.sent.append((title, body))
            task = asyncio.get_running_loop().create_task(self._desktop(title, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def _desktop(self, title: str, body: str) -> None:
        assert self.notify_send is not None
        try:
            proc = await asyncio.create_subprocess_exec(
                # "--": peer text is never an option (-i FILE, --app-name=Bank); the body is
                # plain text, escaped for the servers that read it as markup (review L6).
                self.notify_send, "--app-name=tenchat", "--", for_name(title) or "tenchat",
                html.escape(for_terminal(body[:200]), quote=False),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
        except OSError as exc:
            log.info("notify-send failed: %s", exc)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
