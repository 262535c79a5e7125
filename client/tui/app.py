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
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.widgets import Input, TextArea

from ...common.textsafe import for_terminal
from ..keystore import Keystore
from ..settings import Settings, load_settings, save_settings
from .commands import ChatCommands
from .errors import human_error
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
        click actions), with terminal controls made visible, and without the protocol's
        error codes (``bad_handle: …``), which are for programs and logs."""
        super().notify(for_terminal(human_error(message)), title=for_terminal(title),
                       severity=severity,
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
        self._input: deque[events.Key | events.Paste] = deque()  # keys waiting their turn
        self._settling: asyncio.Task[None] | None = None
        # Keys typed while tenchat starts (the terminal buffers them from the moment the
        # command runs) wait until the first screen that takes them has its focus: the
        # unlock or first-run form, or the chat with its first conversation open. Before,
        # they went to whatever was focused meanwhile and the first ones were lost.
        self._started = asyncio.Event()

    # --- keys in order -----------------------------------------------------------------------
    #
    # Textual hands each key to the widget focused when the key is *read*; a binding runs
    # only when the key has bubbled up to the app, after the keys behind it were already
    # handed out. So in a burst ("Ctrl+N alice Enter", a password manager typing into a
    # form, "E" then the new text) the keys after a binding that opens a screen or moves
    # the focus went to the old place. Here every key or paste from the terminal waits
    # while the last bound key settles: its handlers ran, the screen it opened is mounted
    # and focused. Keys that only edit text (letters, arrows in a text box) don't wait.

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.Paste)) and not event.is_forwarded:
            if not self._started.is_set() and isinstance(event, events.Key) \
                    and event.key == "ctrl+j":
                # Typed before Textual put the terminal in raw mode, Enter was turned into
                # a line feed by the terminal (ICRNL): it was Enter, not Ctrl+J.
                event = events.Key("enter", "\r")
            self._input.append(event)
            if self._settling is None:
                await self._feed_input()
            return
        await super().on_event(event)

    async def _feed_input(self) -> None:
        while self._input and self._settling is None and self._started.is_set():
            event = self._input.popleft()
            moves = isinstance(event, events.Key) and self._is_bound(event.key)
            await super().on_event(event)
            if moves:
                self._settling = asyncio.create_task(self._settle())

    def _is_bound(self, key: str) -> bool:
        """Whether ``key`` runs a binding (other than a text box's own editing keys)."""
        try:
            chain = self.screen._binding_chain
            focused = self.focused
        except Exception:  # no screen yet, or closing
            return False
        if getattr(focused, "HOLDS_KEYS", False):
            return True  # e.g. the message log: every key there may move the focus
        for namespace, bindings in chain:
            for binding in bindings.key_to_bindings.get(key, ()):
                if not (namespace is focused and isinstance(focused, (TextArea, Input))
                        and binding.action in _EDITING):
                    return True
        return False

    async def _settle(self) -> None:
        """Wait until the widgets have handled what is queued for them, the workers the
        key started have finished (a dialog looking a handle up, a conversation opening;
        3 s at most) and nothing changed in a whole round; then until a new screen has
        its focus."""
        before = set(self.workers)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 3.0
            for round_ in range(12):
                screen, focused = self.screen, self.focused
                await self._drain(screen)
                started = [w for w in self.workers if w not in before
                           and not w.is_finished and w.group not in _BACKGROUND]
                if started and loop.time() < deadline:
                    await asyncio.wait([asyncio.ensure_future(_finished(w)) for w in started],
                                       timeout=max(deadline - loop.time(), 0.01))
                    continue
                if round_ >= 1 and self.screen is screen and self.focused is focused:
                    break
            deadline = loop.time() + 0.5
            while (self.screen.focused is None and loop.time() < deadline
                   and any(w.focusable for w in self.screen.query("*"))):
                await asyncio.sleep(0.01)
        except Exception:  # the app is closing; let the keys through
            log.debug("settling keys", exc_info=True)
        self.call_later(self._resume_input)

    async def _drain(self, screen: Any) -> None:
        pumps = [self, *screen.walk_children(with_self=True)]
        waiting = 0
        done = asyncio.Event()

        def one_done() -> None:
            nonlocal waiting
            waiting -= 1
            if waiting == 0:
                done.set()

        for pump in pumps:
            if pump.call_later(one_done):
                waiting += 1
        if waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 2.0)

    async def _resume_input(self) -> None:
        self._settling = None
        await self._feed_input()

    def _hold_input_until(self, ready: Awaitable[Any]) -> None:
        """Keep the keys from the terminal queued until ``ready`` (a screen shown and
        focused; 10 s at most), then hand them out in order."""
        self._started.clear()

        async def release() -> None:
            try:
                async with asyncio.timeout(10):
                    await ready
            except Exception:  # too slow, or the screen failed: let the keys through
                log.debug("waiting for the first screen", exc_info=True)
            self._started.set()
            if self._settling is None:  # let the focus the screen asked for land first
                self._settling = asyncio.create_task(self._settle())

        self.run_worker(release(), group="start-up")

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

            self._hold_input_until(self.push_screen(
                FirstRunScreen(self.home, self.relay_url or DEFAULT_RELAY), self._unlocked))
        elif self.passphrase is not None:
            self.run_worker(self._unlock(self.passphrase), exclusive=True)
        else:
            self._ask_passphrase()

    def _ask_passphrase(self, error: str = "") -> None:
        from .screens.unlock import UnlockScreen

        self._hold_input_until(self.push_screen(
            UnlockScreen(self.home, self.relay_url, error), self._unlocked))

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
        chat = ChatScreen(client)
        self._hold_input_until(chat.ready.wait())
        self.push_screen(chat)

    async def _run_client(self, client: Any) -> None:
        # While open, the TUI owns the home like `tenchat daemon`: scripts' commands go
        # through its socket (docs/rpc.md). If a daemon already serves the home, the TUI
        # works beside it (each transaction takes the home's lock) without a socket.
        from ..daemon import HomeBusy, HomeServer
        from ..hosting import share

        server: HomeServer | None = HomeServer(client, self.home)
        try:
            await server.start()  # type: ignore[union-attr]
            receive = share(client)(client.run())
        except HomeBusy:
            server = None
            receive = client.run()
        try:
            await receive
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the core reports; the UI stays usable offline
            log.exception("client stopped")
            self.notify(f"relay connection stopped: {exc}", severity="error", timeout=30)
        finally:
            if server is not None:
                await server.close()

    async def on_unmount(self) -> None:
        await self.shutdown_client()

    async def shutdown_client(self) -> None:
        if self._settling is not None:
            self._settling.cancel()
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

    def get_system_commands(self, screen: Any) -> Any:
        """Of Textual's own palette commands only Theme: the rest (Keys, Maximize,
        Screenshot, Quit) are Textual's, not tenchat's, or already in the app's list."""
        return (c for c in super().get_system_commands(screen) if c.title == "Theme")

    # --- actions ----------------------------------------------------------------------------

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.keymap_settings))


# Worker groups that run beside what a key does (telling the peer we type, receipts, list
# refreshes): keys don't wait for them.
_BACKGROUND = frozenset({"typing", "read", "refresh", "seen", "message-changed", "stickers",
                         "group-info"})


async def _finished(worker: Any) -> None:
    with contextlib.suppress(Exception):
        await worker.wait()
    await asyncio.sleep(0)  # started but not running yet: wait() returns at once


# A text box's own keys: they change the text or the cursor, never the focus.
_EDITING = frozenset(b.action for b in (*TextArea.BINDINGS, *Input.BINDINGS)
                     if isinstance(b, Binding)) - {"submit"}


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
