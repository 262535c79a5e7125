"""Slash commands in the composer: ``/mute``, ``/react 👍``, ``/poll Lunch? | pizza | sushi``…

One table (:data:`COMMANDS`) of small handlers; each gets the chat screen and the text
after the command's name, and calls the client core the CLI calls, or opens a screen.
``//text`` sends ``/text`` as a message. Another screen can take a command over with
:func:`register` (e.g. a wallet screen for ``/gift``): the registry is the plug.

    if (parsed := parse(text)) is not None:   # a command, not a message
        await run(screen, *parsed)
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from .slash_table import (
    COMMANDS,
    SlashCommand,
    complete,
    matching,
    parse,
    register,
    run,
    unescape,
)

__all__ = ["SlashCommand", "COMMANDS", "register", "parse", "unescape", "complete", "matching",
           "run"]

# --- helpers --------------------------------------------------------------------------------


def _peer(screen: Any) -> bytes:
    if screen.peer is None:
        raise ValueError("open a conversation first")
    return bytes(screen.peer)


def _handle(screen: Any, args: str) -> str:
    """``@bob`` / ``bob`` from args, else the open 1:1 conversation's peer."""
    if args:
        return args.split()[0].lstrip("@")
    conv = screen.conversations.get(screen.peer) if screen.peer else None
    if conv is None or not conv.handle:
        raise ValueError("name someone: @handle")
    return str(conv.handle)


def _latest(screen: Any, *, mine: bool | None = None) -> Any:
    """The newest message shown (ours only, theirs only, or any); ValueError if none."""
    from .widgets.message_log import MessageLog

    log = screen.query_one(MessageLog)
    for row in reversed(log.rows):
        if row.deleted or (mine is not None and row.outgoing != mine):
            continue
        return row
    raise ValueError("no such message here")


# --- the commands ---------------------------------------------------------------------------


@register("help", "", "List the slash commands (F1: every key)")
def _help(screen: Any, args: str) -> None:
    from .screens.help import HelpScreen

    screen.app.push_screen(HelpScreen(screen.app.keymap_settings, slash_first=True))


@register("mute", "", "Mute this conversation")
async def _mute(screen: Any, args: str) -> None:
    await screen.client.set_muted(_peer(screen), True)
    screen.notify("Muted.")
    await screen.refresh_conversations()


@register("unmute", "", "Unmute this conversation")
async def _unmute(screen: Any, args: str) -> None:
    await screen.client.set_muted(_peer(screen), False)
    screen.notify("Unmuted.")
    await screen.refresh_conversations()


@register("pin", "", "Pin this conversation to the top (a message: select it, p)")
async def _pin(screen: Any, args: str) -> None:
    await screen.client.set_pinned(_peer(screen), True)
    await screen.refresh_conversations()


@register("unpin", "", "Unpin this conversation")
async def _unpin(screen: Any, args: str) -> None:
    await screen.client.set_pinned(_peer(screen), False)
    await screen.refresh_conversations()


@register("block", "[@handle]", "Block someone (default: this peer)")
async def _block(screen: Any, args: str) -> None:
    handle = _handle(screen, args)
    await screen.client.set_blocked(handle, True)
    screen.notify(f"@{handle} blocked (/unblock undoes it).")
    await screen.refresh_conversations()


@register("unblock", "[@handle]", "Unblock someone (default: this peer)")
async def _unblock(screen: Any, args: str) -> None:
    handle = _handle(screen, args)
    await screen.client.set_blocked(handle, False)
    screen.notify(f"@{handle} unblocked.")
    await screen.refresh_conversations()


@register("react", "<emoji>", "React to the newest message from the others")
async def _react(screen: Any, args: str) -> None:
    if not args:
        raise ValueError("which emoji? /react 👍")
    row = _latest(screen, mine=False)
    await screen.client.react(_peer(screen), row.id, args.split()[0])


@register("reply", "[text]", "Reply to the newest message from the others (text: send it)")
async def _reply(screen: Any, args: str) -> None:
    from .widgets.reply_bar import ReplyBar

    row = _latest(screen, mine=False)
    if args:
        await screen.client.compose(_peer(screen), args, reply_to=row.id)
        return
    screen.editing, screen.reply_to = None, row.id
    author = screen.query_one("#messages").author(row)
    from . import render

    screen.query_one(ReplyBar).text = f"↳ replying to @{author}: {render.preview(row.text, 50)}"


@register("edit", "[text]", "Edit your last message (text: replace it at once)")
async def _edit(screen: Any, args: str) -> None:
    from .widgets.composer import Composer
    from .widgets.reply_bar import ReplyBar

    row = _latest(screen, mine=True)
    if args:
        await screen.client.edit(_peer(screen), row.id, args)
        return
    screen.reply_to, screen.editing = None, row.id
    screen.query_one(ReplyBar).text = "✎ editing your message — Enter saves"
    composer = screen.query_one(Composer)
    composer.load_text(row.text)
    composer.move_cursor(composer.document.end)


@register("delete", "", "Delete your last message for everyone (asks first)")
def _delete(screen: Any, args: str) -> None:
    from . import render
    from .screens.confirm import ConfirmScreen

    row = _latest(screen, mine=True)
    peer = _peer(screen)

    def confirmed(yes: bool | None) -> None:
        if yes:
            screen._run_action(screen.client.delete(peer, row.id))

    screen.app.push_screen(ConfirmScreen(f"Delete “{render.preview(row.text, 50)}” for "
                                         "everyone?"), confirmed)


@register("poll", "<question> | <option> | <option> …",
          "Send a poll (add --multiple for several choices)")
async def _poll(screen: Any, args: str) -> None:
    multiple = "--multiple" in args.split()
    parts = [p.strip() for p in args.replace("--multiple", "").split("|")]
    if len(parts) < 3 or not all(parts):
        raise ValueError("/poll Lunch? | pizza | sushi")
    await screen.client.polls.create(_peer(screen), parts[0], parts[1:], multiple=multiple)


@register("gift", "<amount> [token] [--chain name]",
          "Send tokens to this peer's verified wallet (asks with amount, chain, address)")
async def _gift(screen: Any, args: str) -> None:
    from .screens.confirm import ConfirmScreen

    words = shlex.split(args)
    chain = None
    if "--chain" in words:
        i = words.index("--chain")
        chain = words[i + 1] if i + 1 < len(words) else None
        del words[i:i + 2]
    if not words:
        raise ValueError("/gift 0.5 [token] [--chain name]")
    handle = _handle(screen, "")
    plan = await screen.client.wallet.plan_gift(handle, words[0],
                                                words[1] if len(words) > 1 else None,
                                                chain, None)
    shown = plan.describe()
    question = (f"Send {shown['amount']} {plan.symbol} on {plan.chain.name} "
                f"(chain {plan.chain.chain_id}) to @{plan.handle}?\n"
                f"to   {plan.recipient}\nfrom {plan.sender}\n"
                f"max network fee {shown['max_fee']} {plan.chain.symbol}")

    def confirmed(yes: bool | None) -> None:
        if yes:
            screen._run_action(screen.client.wallet.send_gift(plan))

    screen.app.push_screen(ConfirmScreen(question), confirmed)


@register("story", "<text>", "Post a text story for 24 hours (F4 watches them)")
async def _story(screen: Any, args: str) -> None:
    if not args:
        raise ValueError("/story what to say")
    await screen.client.stories.post_story(text=args)
    screen.notify("Story posted for 24 hours.")


@register("timer", "[off|30s|5m|1h|1d|1w]", "Disappearing messages here (no value: choose)")
async def _timer(screen: Any, args: str) -> None:
    if not args:
        screen.action_set_timer()
        return
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value = args.split()[0].lower()
    match = re.fullmatch(r"(\d+)([smhdw])", value)
    if value == "off":
        seconds = 0
    elif match:
        seconds = int(match.group(1)) * units[match.group(2)]
    else:
        raise ValueError("/timer off, 30s, 5m, 1h, 1d or 1w")
    await screen.client.set_timer(_peer(screen), seconds)
    screen.notify(f"Disappearing messages: {value}")


def _action(name: str, usage: str, description: str, action: str) -> None:
    """A command that does what a key does (the same action method)."""

    async def handler(screen: Any, args: str) -> None:
        await screen.run_action(action)

    register(name, usage, description)(handler)


_action("verify", "", "Compare safety numbers with this peer", "verify")
_action("dnd", "", "Do not disturb on/off", "toggle_dnd")
_action("privacy", "", "Read receipts, typing, presence, incognito", "privacy")
_action("members", "", "Show or hide the group's members", "toggle_members")
_action("attach", "", "Send a file here", "attach")
_action("sticker", "", "Send a sticker", "sticker")
_action("feed", "", "The feed", "feed")
_action("profile", "", "Your profile", "profile")
_action("stories", "", "Watch the unseen stories", "stories")
_action("contacts", "", "Contacts", "contacts")
_action("group", "", "New group", "new_group")
_action("editor", "", "Write this message in $EDITOR", "external_editor")
_action("next", "", "The next conversation with unread messages", "next_unread")


@register("search", "[words]", "Search messages (words: start with them)")
def _search(screen: Any, args: str) -> None:
    screen.action_search(args)


@register("new", "@handle", "Start a chat with someone")
async def _new(screen: Any, args: str) -> None:
    if not args:
        screen.action_new_chat()
        return
    conv = await screen.client.start_conversation(args.split()[0].lstrip("@"))
    await screen._start(conv.peer)


# The feature screens' commands (/wallet, /packs, /friends, /viewers; /gift, /poll and
# /story without arguments open their dialogs): registered here so COMMANDS is whole.
from . import feature_slash  # noqa: E402,F401
