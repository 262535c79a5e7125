"""Slash commands that open the feature screens (client/tui/screens/feature_actions.py):
``/wallet``, ``/packs``, ``/friends``, ``/viewers``, and ``/gift``, ``/poll``, ``/story``
without arguments (with arguments they stay the one-line commands of slash.py)."""

from __future__ import annotations

from typing import Any

from . import slash_table as slash

__all__: list[str] = []


def _opens(name: str, usage: str, description: str, action: str) -> None:
    """``/name`` with no arguments runs ``action``; with arguments, the command slash.py
    had under that name (if any)."""
    inline = slash.COMMANDS.get(name)

    async def handler(screen: Any, args: str) -> None:
        if args or inline is None:
            if inline is None:
                await screen.run_action(action)
                return
            result = inline.handler(screen, args)
            if result is not None:
                await result
            return
        await screen.run_action(action)

    if inline is not None:  # its usage stays; the description says what it does alone
        usage, description = inline.usage, f"{inline.description}; alone: {description}"
    slash.register(name, usage, description)(handler)


_opens("wallet", "", "Your wallets, balances and gifts", "wallet")
_opens("packs", "", "Sticker packs: make one, install a link", "sticker_packs")
_opens("friends", "", "Close friends for your stories", "close_friends")
_opens("viewers", "", "Your stories and who viewed them", "story_viewers")
_opens("devices", "", "This account's devices: approve a new one, remove one", "devices")
_opens("gift", "", "the gift dialog", "send_gift")
_opens("poll", "", "the poll dialog", "new_poll")
_opens("story", "", "the story dialog (an image, a filter, close friends)", "new_story")
