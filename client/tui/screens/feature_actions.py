"""The chat screen's keys for the features the CLI had first — wallet, polls, stories,
sticker packs, close friends, story viewers, devices — and the live story watcher.

Kept out of chat.py so the chat screen's own key handling can change without touching
these: :class:`ChatScreen` mixes :class:`FeatureActions` in and binds
:data:`keys.FEATURE_KEYS`. Each screen also opens on its own (slash commands do that)::

    app.push_screen(WalletScreen(client))
    app.push_screen(GiftScreen(client, "bob"))
    app.push_screen(PollCreateScreen(client, conversation))
    app.push_screen(StoryComposeScreen(client))
"""

from __future__ import annotations

from typing import Any

from .. import feature_slash  # noqa: F401 - registers /wallet, /gift, /poll, /story…
from ..bindings import key_bindings
from ..keys import FEATURE_KEYS
from ..live import StoryWatcher

__all__ = ["FeatureActions", "FEATURE_BINDINGS"]

FEATURE_BINDINGS = key_bindings(FEATURE_KEYS, footer=True)


class FeatureActions:
    """Actions for :data:`FEATURE_KEYS`; mixed into the chat screen (``self`` is a Screen
    with ``client`` and ``peer``)."""

    client: Any
    peer: bytes | None
    app: Any

    async def on_mount(self) -> None:
        self.story_watcher = StoryWatcher(self)  # type: ignore[arg-type]
        self.story_watcher.start()

    def action_wallet(self) -> None:
        from .wallet import WalletScreen

        self.app.push_screen(WalletScreen(self.client))

    def action_send_gift(self) -> None:
        """The gift dialog, addressed to the open 1:1 peer (if any)."""
        from .gift import GiftScreen

        conv = getattr(self, "conversations", {}).get(self.peer) if self.peer else None
        handle = conv.handle if conv is not None and not conv.is_group and conv.handle else ""
        self.app.push_screen(GiftScreen(self.client, handle or ""))

    def action_new_poll(self) -> None:
        from .poll_create import PollCreateScreen

        if self.peer is None:
            self.notify("Open a conversation first.", severity="warning")  # type: ignore[attr-defined]
            return
        self.app.push_screen(PollCreateScreen(self.client, self.peer))

    def action_new_story(self) -> None:
        from .story_compose import StoryComposeScreen

        self.app.push_screen(StoryComposeScreen(self.client))

    def action_sticker_packs(self) -> None:
        from .sticker_packs import StickerPacksScreen

        self.app.push_screen(StickerPacksScreen(self.client))

    def action_close_friends(self) -> None:
        from .close_friends import CloseFriendsScreen

        self.app.push_screen(CloseFriendsScreen(self.client))

    def action_story_viewers(self) -> None:
        from .story_viewers import StoryViewersScreen

        self.app.push_screen(StoryViewersScreen(self.client))

    def action_devices(self) -> None:
        from .devices import DevicesScreen

        self.app.push_screen(DevicesScreen(self.client))
