"""The member panel of the open group: members with roles and handles, and the admin
actions on them. Keys the user's role does not allow are disabled (the core and the
relay refuse them too); the panel asks for input and confirmation and posts
:class:`MemberPanel.Change` for the screen to carry out."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ....common.textsafe import for_terminal
from .. import render
from ..keys import MEMBER_KEYS, display_key

__all__ = ["MemberPanel", "allowed"]

_RANK = {"owner": 3, "admin": 2, "member": 1}
_SHORT = {"add_member": "add", "remove_member": "remove", "promote": "make admin",
          "demote": "make member", "rename": "rename", "set_topic": "topic", "leave": "leave"}


def allowed(action: str, my_role: str | None, target_role: str | None, is_me: bool) -> bool:
    """May someone of ``my_role`` do ``action`` (a MEMBER_KEYS id) to this member?
    The same rules as common.groups.check_change, to grey out what would be refused."""
    mine = _RANK.get(my_role or "", 0)
    if mine == 0:
        return False
    if action == "leave":
        return my_role != "owner"
    if action in ("add_member", "rename", "set_topic"):
        return mine >= _RANK["admin"]
    if target_role is None or is_me:
        return False
    if action == "remove_member":
        return mine >= _RANK["admin"] and _RANK[target_role] < mine
    if action == "promote":
        return my_role == "owner" and target_role == "member"
    if action == "demote":
        return my_role == "owner" and target_role == "admin"
    return False


class MemberPanel(Vertical, can_focus=False):
    """Right of the messages; F6 (or Alt+G) shows and hides it."""

    BINDINGS = [Binding(spec.key, spec.id, spec.description, id=spec.id, show=False)
                for spec in MEMBER_KEYS]

    class Change(Message):
        """Carry out ``action`` (a MEMBER_KEYS id) on ``handle`` (or with ``value``)."""

        def __init__(self, action: str, handle: str | None = None, value: str = "") -> None:
            super().__init__()
            self.action = action
            self.handle = handle
            self.value = value

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.info: Any = None  # GroupInfo
        self.me: bytes = b""
        self.members: list[tuple[bytes, str, str | None]] = []  # (user, role, handle)

    def compose(self) -> ComposeResult:
        yield Static(id="group-title")
        yield OptionList(id="members")
        yield Static(id="member-keys", classes="hint")

    def show_group(self, info: Any, me: bytes) -> None:
        self.info, self.me = info, me
        self.members = sorted(
            ((u, r, info.handles.get(u)) for u, r in info.members.items()),
            key=lambda m: (-_RANK.get(m[1], 0), m[2] or ""))
        title = render.plain(info.name, "bold")
        title.append(f"\n{len(self.members)} members · you: {info.my_role or 'not a member'}",
                     "dim")
        if info.topic:
            title.append("\n" + for_terminal(info.topic), "italic")
        self.query_one("#group-title", Static).update(title)
        options = self.query_one(OptionList)
        highlighted = options.highlighted
        options.clear_options()
        for user, role, handle in self.members:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"@{handle or '?'}", "bold" if user == me else "")
            if user == me:
                line.append(" (you)", "dim")
            line.append(f"  {role}", "dim" if role == "member" else "bold")
            options.add_option(Option(line, id=user.hex()))
        if self.members:
            options.highlighted = min(highlighted or 0, len(self.members) - 1)
        self._show_keys()

    def _target(self) -> tuple[bytes, str, str | None] | None:
        options = self.query_one(OptionList)
        index = options.highlighted
        if index is None or index >= len(self.members):
            return None
        return self.members[index]

    def may(self, action: str) -> bool:
        if self.info is None:
            return False
        target = self._target()
        return allowed(action, self.info.my_role, target[1] if target else None,
                       bool(target and target[0] == self.me))

    def _show_keys(self) -> None:
        out = Text()
        for spec in MEMBER_KEYS:
            ok = self.may(spec.id)
            out.append(f"{display_key(spec.key)} ", "bold" if ok else "dim strike")
            out.append(f"{_SHORT[spec.id]}\n", "" if ok else "dim strike")
        self.query_one("#member-keys", Static).update(out)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if any(spec.id == action for spec in MEMBER_KEYS):
            return True if self.may(action) else None  # None: shown disabled
        return True

    def on_option_list_option_highlighted(self) -> None:
        self._show_keys()
        self.refresh_bindings()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()

    # --- actions: ask, then post a Change -------------------------------------------------

    def _ask(self, action: str, title: str, value: str = "", placeholder: str = "") -> None:
        from ..screens.prompt import PromptScreen

        def answered(text: str | None) -> None:
            if text is not None and text.strip():
                self.post_message(self.Change(action, value=text.strip()))

        self.app.push_screen(PromptScreen(title, value=value, placeholder=placeholder),
                             answered)

    def _confirm(self, action: str, question: str, handle: str | None) -> None:
        from ..screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(self.Change(action, handle))

        self.app.push_screen(ConfirmScreen(question), answered)

    def action_add_member(self) -> None:
        self._ask("add_member", f"Add to {self.info.name}", placeholder="@dave, @erin")

    def action_rename(self) -> None:
        self._ask("rename", "Rename the group", value=self.info.name)

    def action_set_topic(self) -> None:
        self._ask("set_topic", "Topic", value=self.info.topic)

    def action_remove_member(self) -> None:
        target = self._target()
        if target is not None and target[2]:
            self._confirm("remove_member", f"Remove @{target[2]} from {self.info.name}?",
                          target[2])

    def action_promote(self) -> None:
        target = self._target()
        if target is not None and target[2]:
            self.post_message(self.Change("promote", target[2]))

    def action_demote(self) -> None:
        target = self._target()
        if target is not None and target[2]:
            self.post_message(self.Change("demote", target[2]))

    def action_leave(self) -> None:
        self._confirm("leave", f"Leave {self.info.name}?", None)
