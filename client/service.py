"""The client: the core (client/core.py) with its features plugged in — groups, polls,
stickers, social, stories, wallet — for the CLI, the TUI and the daemon alike.

A :class:`Client` owns one unlocked identity, its local cache and (lazily) one relay
connection. Outgoing messages are encrypted, written to the outbox and committed before
anything is sent; incoming ones are decrypted and committed before the relay is told to
delete them (docs/design.md, "Decisions": nothing acknowledged is lost).

This module is the only place that knows every feature: the core never imports one. Each
feature hands the core its content handlers here (``register_content``); the ones a
`tenchat send` never touches are imported on first use (start-up time: docs/performance.md
wants the whole command under 0.5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..common import content as c
from ..common.groups import GroupState
from .base import (
    MAX_POW_BITS,
    OTK_NEXT,
    RECONNECT_CAP,
    RECONNECT_FIRST,
    Conversation,
    KeyChanged,
    Receipts,
    SearchHit,
    ca_file_of,
    check_text,
    clock_from_environ,
    now_ms,
)
from .cache import Cache, MessageRow
from .core import Core
from .errors import PeerError, QueuedOffline
from .events import Event
from .groups import GroupService
from .keystore import Secrets
from .polls import PollService
from .rules import Incoming, attachment_text, mentions

if TYPE_CHECKING:
    from .social import SocialService
    from .stickers import StickerService
    from .stories import StoryService
    from .wallet.service import WalletService

__all__ = ["Client", "Conversation", "SearchHit", "PeerError", "QueuedOffline", "KeyChanged",
           "Receipts", "now_ms", "clock_from_environ", "check_text", "mentions",
           "attachment_text", "ca_file_of", "MAX_POW_BITS", "OTK_NEXT", "RECONNECT_CAP",
           "RECONNECT_FIRST"]

# How long closing waits for sticker packs our other devices installed to be fetched here
# (so `tenchat sync` gets them too); one not fetched by then is given up (its link installs it).
INSTALL_GRACE_S = 30.0


class Client(Core):
    """One unlocked identity with every feature: ``client.groups``, ``client.polls``,
    ``client.stickers``, ``client.social``, ``client.stories``, ``client.wallet``."""

    groups: GroupService  # (the core knows it as a GroupChannel)

    def __init__(self, home: Path, relay_url: str, secrets: Secrets, cache: Cache, *,
                 clock: Callable[[], int] = now_ms) -> None:
        super().__init__(home, relay_url, secrets, cache, clock=clock)
        self.groups = GroupService(self)
        self.polls = PollService(self)
        self.register_content((c.Poll, c.Vote, c.PollClose, c.PollTally), self.polls.apply)
        self.after_receive(self.polls.publish_due)  # tallies of anonymous polls with votes
        self.register_content((c.Sticker,), self._sticker)
        self.register_content((c.Gift,), self._gift)
        self.register_content((c.AudienceKey,), self._audience_key)
        self.register_content((c.GroupKey,), self._group_key)
        self.register_content((c.StoryKey, c.StoryViewed), self._story_content)
        self.on_story_new(lambda push: self.stories.pushed(push.author, push.story))
        self.add_runner(lambda: self.wallet.run())  # balances, pending gifts
        # What our other devices changed (issue 16; client/device_sync.py has the rest).
        self.register_state(("follower",), lambda st, ev: self.social.apply_state(st, ev))
        self.register_state(("close_friend",), lambda st, ev: self.stories.apply_state(st, ev))
        self.register_state(("sticker_pack",),
                            lambda st, ev: self.stickers.apply_state(st, ev))

    async def close(self) -> None:
        if "stickers" in self.__dict__:  # packs our other devices installed: let them land
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(INSTALL_GRACE_S):
                    await self.stickers.installs_done()
        await super().close()

    @functools.cached_property
    def social(self) -> SocialService:
        from .social import SocialService

        return SocialService(self)

    @functools.cached_property
    def stories(self) -> StoryService:
        from .stories import StoryService

        return StoryService(self)

    @functools.cached_property
    def stickers(self) -> StickerService:
        from .stickers import StickerService

        return StickerService(self)

    @functools.cached_property
    def wallet(self) -> WalletService:
        from .wallet.service import WalletService

        return WalletService(self)

    # The handlers of the lazily made services: the service (and its module) is made
    # when its first content arrives.

    async def _sticker(self, conv: bytes, author: bytes, content: c.Content,
                       group: GroupState | None, new: list[MessageRow], receipts: Receipts,
                       events: list[Event]) -> None:
        assert isinstance(content, c.Sticker)
        await self.stickers.apply(conv, author, content, group, new, receipts, events)

    async def _gift(self, conv: bytes, author: bytes, content: c.Content,
                    group: GroupState | None, new: list[MessageRow], receipts: Receipts,
                    events: list[Event]) -> None:
        await self.wallet.receive_gift(Incoming(conv, author, content, group), new, receipts,
                                       events)

    async def _audience_key(self, conv: bytes, author: bytes, content: c.Content,
                            group: GroupState | None, new: list[MessageRow],
                            receipts: Receipts, events: list[Event]) -> None:
        await self.social.receive_audience_key(Incoming(conv, author, content, group))

    async def _group_key(self, conv: bytes, author: bytes, content: c.Content,
                         group: GroupState | None, new: list[MessageRow],
                         receipts: Receipts, events: list[Event]) -> None:
        assert isinstance(content, c.GroupKey)
        if group is None:  # 1:1 only: the pairwise session authenticates the admin
            await self.groups.receive_key(author, content, events)

    async def _story_content(self, conv: bytes, author: bytes, content: c.Content,
                             group: GroupState | None, new: list[MessageRow],
                             receipts: Receipts, events: list[Event]) -> None:
        await self.stories.receive(Incoming(conv, author, content, group), events)
