"""Every key binding of the TUI in one table: the bindings, the help screen, the
command palette and docs/tui.md all come from here.

Each binding has an id (the action name); ``Settings.keys`` maps an id to other
keys (Textual's keymap), e.g. ``search = "ctrl+f,f3"`` in HOME/config.toml.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KeySpec", "APP_KEYS", "CHAT_KEYS", "COMPOSER_KEYS", "LOG_KEYS", "MESSAGE_KEYS",
           "MEMBER_KEYS", "LIST_KEYS", "FEED_KEYS", "PROFILE_KEYS", "STORY_KEYS", "FEATURE_KEYS",
           "WALLET_KEYS", "STICKER_PACK_KEYS", "CLOSE_FRIEND_KEYS", "DEVICE_KEYS", "VERIFY_KEYS",
           "ALL_KEYS",
           "display_key"]


@dataclass(frozen=True, slots=True)
class KeySpec:
    id: str  # binding id and action name; the key in Settings.keys
    key: str  # default key(s), comma separated
    description: str
    scope: str  # where it works, for the help screen
    palette: bool = True  # offered in the command palette
    show: bool = False  # shown in the footer


APP_KEYS = [
    KeySpec("help", "f1,question_mark", "Show the key bindings", "anywhere", show=True),
    KeySpec("command_palette", "ctrl+p", "Command palette: every action", "anywhere",
            palette=False, show=True),
    KeySpec("quit", "ctrl+q", "Quit", "anywhere", show=True),
]

CHAT_KEYS = [
    KeySpec("search", "ctrl+f", "Search messages (all or this conversation)", "chat",
            show=True),
    KeySpec("new_chat", "ctrl+n", "New chat by handle", "chat", show=True),
    KeySpec("contacts", "ctrl+o", "Contacts: add, block, verify", "chat", show=True),
    KeySpec("new_group", "ctrl+g", "New group: a name and members by handle", "chat"),
    KeySpec("toggle_members", "f6,alt+g", "Show or hide the group's members", "chat"),
    KeySpec("next_conversation", "ctrl+pagedown", "Next conversation", "chat"),
    KeySpec("previous_conversation", "ctrl+pageup", "Previous conversation", "chat"),
    KeySpec("next_unread", "ctrl+r", "Jump to the next conversation with unread messages",
            "chat"),
    KeySpec("toggle_mute", "f8,alt+m", "Mute or unmute this conversation", "chat"),
    KeySpec("toggle_pin", "f9,alt+p", "Pin or unpin this conversation", "chat"),
    KeySpec("toggle_block", "f12", "Block or unblock this peer", "chat"),
    KeySpec("verify", "alt+v", "Verify this peer's safety number (also /verify)", "chat"),
    KeySpec("toggle_dnd", "alt+d", "Do not disturb: no bell, no desktop notifications "
            "(also /dnd)", "chat"),
    KeySpec("set_timer", "ctrl+t,alt+t", "Disappearing messages: off, 30s, 5m, 1h, 1d, 1w",
            "chat"),
    KeySpec("privacy", "alt+s", "Privacy: read receipts, typing, presence, incognito "
            "(also /privacy)", "chat"),
    KeySpec("feed", "f2", "Feed: posts of the accounts you follow", "chat"),
    KeySpec("profile", "f3", "Your profile: edit it, followers, follow requests", "chat"),
    KeySpec("stories", "f4", "Stories: watch the unseen ones", "chat"),
    KeySpec("attach", "f5,alt+a", "Send a file here (images: pick a filter, preview)",
            "chat"),
    KeySpec("sticker", "ctrl+s,alt+k", "Send a sticker (picker of installed packs)", "chat"),
    KeySpec("external_editor", "f7,alt+e", "Write the message in $EDITOR", "chat"),
    KeySpec("focus_composer", "ctrl+l", "Write a message (focus the composer)", "chat"),
    KeySpec("focus_messages", "ctrl+up", "Select messages (focus the message pane)", "chat"),
    KeySpec("focus_list", "escape",
            "Cancel a reply or edit; else back to the conversation list", "chat"),
]

COMPOSER_KEYS = [
    KeySpec("send", "enter", "Send the message", "composer", palette=False),
    KeySpec("newline", "ctrl+j,shift+enter,alt+enter", "New line in the message",
            "composer", palette=False),
    KeySpec("select_last", "up", "In an empty composer: select the latest message",
            "composer", palette=False),
]

LOG_KEYS = [
    KeySpec("scroll_older", "up,k", "Select the previous message (older ones load as you go)",
            "messages", palette=False),
    KeySpec("scroll_newer", "down,j", "Select the next message", "messages", palette=False),
    KeySpec("page_older", "pageup", "Page up", "messages", palette=False),
    KeySpec("page_newer", "pagedown", "Page down", "messages", palette=False),
    KeySpec("oldest", "home,g", "Go to the oldest loaded message", "messages",
            palette=False),
    KeySpec("latest", "end,G", "Go to the latest message", "messages"),
    KeySpec("back", "escape", "Back to the composer (ends selecting; other letters are "
            "typed there)", "messages", palette=False),
]

MESSAGE_KEYS = [
    KeySpec("reply", "r", "Reply to the selected message", "selected message"),
    KeySpec("react", "e", "React to the selected message (emoji picker)", "selected message"),
    KeySpec("edit_message", "E", "Edit your selected message", "selected message"),
    KeySpec("delete_message", "d", "Delete your selected message for everyone",
            "selected message"),
    KeySpec("pin_message", "p", "Pin or unpin the selected message (groups: admins)",
            "selected message"),
    KeySpec("open_attachment", "o", "Open the selected attachment (preview an image, or save)",
            "selected message"),
    KeySpec("vote", "v", "Vote in the selected poll (digits pick options)",
            "selected message"),
    KeySpec("close_poll", "C", "Close your selected poll", "selected message"),
]

MEMBER_KEYS = [
    KeySpec("add_member", "a", "Add members by handle (admins)", "member panel",
            palette=False),
    KeySpec("remove_member", "x", "Remove the highlighted member (admins)", "member panel",
            palette=False),
    KeySpec("promote", "plus", "Make the highlighted member an admin (owner)",
            "member panel", palette=False),
    KeySpec("demote", "minus", "Make the highlighted admin a member (owner)",
            "member panel", palette=False),
    KeySpec("rename", "n", "Rename the group (admins)", "member panel", palette=False),
    KeySpec("set_topic", "t", "Set the group's topic (admins)", "member panel",
            palette=False),
    KeySpec("leave", "l", "Leave the group", "member panel", palette=False),
]

LIST_KEYS = [
    KeySpec("open", "enter", "Open the highlighted conversation", "conversation list",
            palette=False),
    KeySpec("cursor", "up,down", "Move through conversations", "conversation list",
            palette=False),
]

FEED_KEYS = [
    KeySpec("open_post", "enter", "Open the highlighted post with its comments", "feed",
            palette=False),
    KeySpec("react_post", "e", "React to the post (emoji picker; again removes yours)", "feed",
            palette=False),
    KeySpec("comment_post", "c", "Comment on the post", "feed", palette=False),
    KeySpec("new_post", "n", "Write a post: text, an image with a filter, the audience",
            "feed", palette=False),
    KeySpec("author_profile", "p", "The post author's profile", "feed", palette=False),
    KeySpec("view_stories", "s", "Watch the unseen stories", "feed", palette=False),
    KeySpec("reload", "r", "Reload from the newest post", "feed", palette=False),
]

PROFILE_KEYS = [
    KeySpec("toggle_follow", "f", "Follow or unfollow (private accounts: ask)", "profile",
            palette=False),
    KeySpec("edit_profile", "e", "Edit your profile: name, bio, avatar, private", "profile",
            palette=False),
    KeySpec("approve", "a", "Approve the highlighted follow request", "profile",
            palette=False),
    KeySpec("deny", "x", "Deny the highlighted request", "profile", palette=False),
    KeySpec("other_profile", "o", "Open someone's profile by handle", "profile",
            palette=False),
]

STORY_KEYS = [
    KeySpec("next_story", "right,space", "Next story (they also move on after 5 s)",
            "story viewer", palette=False),
    KeySpec("previous_story", "left", "Previous story", "story viewer", palette=False),
]

# The screens of features the CLI had first (wallet, polls, stories, sticker packs,
# devices); the chat screen binds these (screens/feature_actions.py).
# (Slash commands open the same screens: /wallet, /gift, /poll, /story, /packs, /friends,
# /viewers, /devices — client/tui/feature_slash.py.)
FEATURE_KEYS = [
    KeySpec("wallet", "f10,alt+w", "Wallet: link, balances, gifts (also /wallet)", "chat"),
    KeySpec("new_poll", "alt+o", "Create a poll in this conversation (also /poll)", "chat"),
    KeySpec("new_story", "f11,alt+y", "Post a story: text, an image with a filter (also /story)",
            "chat"),
    KeySpec("sticker_packs", "alt+i", "Sticker packs: make one, install a link (also /packs)",
            "chat"),
    KeySpec("close_friends", "alt+f", "Close friends: who sees those stories (also /friends)",
            "chat"),
    KeySpec("story_viewers", "alt+r", "Your stories and who viewed each (also /viewers)", "chat"),
    KeySpec("devices", "alt+l", "Devices: this account's, approve a link code, remove one "
            "(also /devices)", "chat"),
]

VERIFY_KEYS = [
    KeySpec("toggle_verified", "m", "Mark the safety number verified, or unmark it",
            "safety number, contacts", palette=False),
]

WALLET_KEYS = [
    KeySpec("create_wallet", "c", "Make a new wallet key here", "wallet", palette=False),
    KeySpec("import_wallet", "i", "Import a wallet's private key (hex)", "wallet",
            palette=False),
    KeySpec("link_wallet", "l", "Link the highlighted wallet to you (it signs)", "wallet",
            palette=False),
    KeySpec("gift", "g", "Send a gift: recipient, amount, chain, then confirm", "wallet",
            palette=False),
    KeySpec("refresh_wallet", "r", "Read balances and gift states from the chains now",
            "wallet", palette=False),
]

STICKER_PACK_KEYS = [
    KeySpec("create_pack", "n", "New pack: a name and image files", "sticker packs",
            palette=False),
    KeySpec("install_pack", "i", "Install a pack from its link", "sticker packs",
            palette=False),
    KeySpec("copy_link", "l", "Show the highlighted pack's link to share", "sticker packs",
            palette=False),
]

CLOSE_FRIEND_KEYS = [
    KeySpec("add_friend", "a", "Add a close friend by handle", "close friends",
            palette=False),
    KeySpec("remove_friend", "x", "Remove the highlighted close friend (the key rotates)",
            "close friends", palette=False),
]

DEVICE_KEYS = [
    KeySpec("approve_device", "a", "Approve a new device: its link code, then compare its "
            "fingerprint", "devices", palette=False),
    KeySpec("remove_device", "x", "Remove the highlighted device (asks first)", "devices",
            palette=False),
]

ALL_KEYS = (APP_KEYS + CHAT_KEYS + FEATURE_KEYS + COMPOSER_KEYS + LOG_KEYS + MESSAGE_KEYS
            + MEMBER_KEYS + LIST_KEYS + FEED_KEYS + PROFILE_KEYS + STORY_KEYS + VERIFY_KEYS
            + WALLET_KEYS + STICKER_PACK_KEYS + CLOSE_FRIEND_KEYS + DEVICE_KEYS)

_NAMES = {"question_mark": "?", "pagedown": "PgDn", "pageup": "PgUp", "escape": "Esc",
          "plus": "+", "minus": "-"}


def display_key(keys: str) -> str:
    """'alt+down,ctrl+pagedown' → 'Alt+Down / Ctrl+PgDn'."""
    out = []
    for key in keys.split(","):
        parts = key.strip().split("+")
        shown = []
        for part in parts:
            name = _NAMES.get(part, part)
            if len(name) == 1:
                shown.append(name.upper() if len(parts) > 1 else name)
            else:
                shown.append(name[:1].upper() + name[1:])
        out.append("+".join(shown))
    return " / ".join(out)
