"""The tenchat TUI application and its factory.

    app = create_app(home, relay_url, passphrase=...)   # a test gives a temp home and relay
    app.run()

The client core runs inside the app's event loop: ``Client.run()`` is one task
started once the identity is unlocked, its events come in through
``Client.subscribe`` and every request is awaited from handlers and workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding

from ...common.textsafe import for_terminal
from ..keystore import Keystore
from ..settings import Settings, load_settings, save_settings
from .commands import ChatCommands
from .keys import APP_KEYS
from .notify import Notifier

__all__ = ["TenchatApp", "create_app", "DEFAULT_RELAY"]

log = logging.getLogger("tenchat.tui")

DEFAULT_RELAY = "ws://127.0.0.1:8765"


class TenchatApp(App[None]):
    """Keyboard-first end-to-end encrypted chat."""

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notification as plain text, whatever the caller asked: they carry error
        messages that quote peers and the relay (never Textual markup, which can hold
        click actions), with terminal controls made visible."""
        super().notify(for_terminal(message), title=for_terminal(title), severity=severity,
                       timeout=timeout, markup=False)

    CSS_PATH = "tenchat.tcss"
    TITLE = "tenchat"
    COMMANDS = App.COMMANDS | {ChatCommands}
    BINDINGS = [Binding(spec.key, spec.id, spec.description, id=spec.id, show=spec.show)
                for spec in APP_KEYS if spec.id != "command_palette"]

    def __init__(self, home: Path, relay_url: str | None, *, passphrase: str | None = None,
                 settings: Settings | None = None, client: Any = None,
                 tz: tzinfo | None = None, today: Callable[[], date] | None = None,
                 notify_send: str | None = "auto", run_client: bool = True,
                 save: bool = True, graphics: str | None = None) -> None:
        super().__init__()
        if graphics is None:  # asked now: once Textual runs, the terminal can't answer
            from .graphics import detect

            graphics = detect()
        self.graphics = graphics  # how images are drawn: "kitty", "sixel" or "halfblocks"
        self.home = home
        self.relay_url = relay_url
        self.passphrase = passphrase
        self.settings = settings if settings is not None else load_settings(home)
        self.client: Any = client
        self.tz = tz  # None: the local zone
        self.today = today or (lambda: datetime.now(tz).date())
        self.run_client = run_client  # False: no relay connection (snapshots)
        self.save = save  # persist settings changes (theme, do-not-disturb)
        self.notifier = Notifier(self.bell, bell_on=self.settings.bell,
                                 desktop=self.settings.desktop_notifications,
                                 do_not_disturb=self.settings.do_not_disturb,
                                 notify_send=notify_send)
        self.keymap_settings: dict[str, str] = dict(self.settings.keys)
        self._runner: asyncio.Task[None] | None = None
        self._owns_client = client is None

    # --- start-up ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        if self.keymap_settings:
            self.set_keymap(self.keymap_settings)
        if self.client is not None:
            self._unlocked(self.client)
        elif not Keystore.in_home(self.home).exists():
            from .screens.first_run import FirstRunScreen

            self.push_screen(FirstRunScreen(self.home, self.relay_url or DEFAULT_RELAY),
                             self._unlocked)
        elif self.passphrase is not None:
            self.run_worker(self._unlock(self.passphrase), exclusive=True)
        else:
            self._ask_passphrase()

    def _ask_passphrase(self, error: str = "") -> None:
        from .screens.unlock import UnlockScreen

        self.push_screen(UnlockScreen(self.home, self.relay_url, error), self._unlocked)

    async def _unlock(self, passphrase: str) -> None:
        from ...common.errors import TenchatError
        from ..service import Client

        try:
            client = await Client.unlock(self.home, self.relay_url, passphrase)
        except TenchatError as exc:
            self._ask_passphrase(str(exc))
            return
        self._unlocked(client)

    def _unlocked(self, client: Any) -> None:
        from .screens.chat import ChatScreen

        if client is None:
            self.exit()
            return
        self.client = client
        self.sub_title = f"@{client.handle}"
        if self.run_client:
            self._runner = asyncio.create_task(self._run_client(client))
        self.push_screen(ChatScreen(client))

    async def _run_client(self, client: Any) -> None:
        try:
            await client.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the core reports; the UI stays usable offline
            log.exception("client stopped")
            self.notify(f"relay connection stopped: {exc}", severity="error", timeout=30)

    async def on_unmount(self) -> None:
        await self.shutdown_client()

    async def shutdown_client(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
            self._runner = None
        await self.notifier.close()
        if self.client is not None and self._owns_client:
            with contextlib.suppress(Exception):
                await self.client.close()

    # --- settings ---------------------------------------------------------------------------

    def watch_theme(self, theme: str) -> None:
        if theme != self.settings.theme:
            self._save(self.settings.with_(theme=theme))

    def toggle_dnd(self) -> bool:
        on = not self.notifier.do_not_disturb
        self.notifier.do_not_disturb = on
        self._save(self.settings.with_(do_not_disturb=on))
        return on

    def _save(self, settings: Settings) -> None:
        self.settings = settings
        if self.save:
            try:
                save_settings(self.home, settings)
            except OSError as exc:
                self.notify(f"could not save settings: {exc}", severity="warning")

    # --- actions ----------------------------------------------------------------------------

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.keymap_settings))


def create_app(home: Path, relay_url: str | None = None, *, passphrase: str | None = None,
               settings: Settings | None = None, **options: Any) -> TenchatApp:
    """The app for one home: first run, unlock, or straight to the chat.

    Options (for tests and the demo): ``client`` (an unlocked client to use),
    ``tz`` and ``today`` (fixed clock for snapshots), ``notify_send`` (path or None),
    ``run_client`` (False: never connect), ``save`` (False: don't write config.toml),
    ``graphics`` ("kitty", "sixel" or "halfblocks"; default: ask the terminal).
    """
    return TenchatApp(Path(home), relay_url, passphrase=passphrase, settings=settings,
                      **options)
