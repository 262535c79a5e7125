"""A profile, verified by the core: name, bio, avatar, follower counts; follow or unfollow
others; one's own profile also edits, and lists follow requests to approve or deny."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Checkbox, Input, OptionList, Static
from textual.widgets.option_list import Option

from ....common.errors import TenchatError
from ....common.textsafe import for_terminal
from .. import render
from ..bindings import key_bindings
from ..keys import PROFILE_KEYS
from ..social_view import fetch_blob, shrink
from ..widgets.image_picker import ImagePicker
from ..widgets.image_preview import ImagePreview

__all__ = ["ProfileScreen", "EditProfileScreen"]

ERRORS = (TenchatError, OSError)
log = logging.getLogger("tenchat.tui")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class ProfileScreen(Screen[None]):
    """``handle`` None: one's own profile."""

    DEFAULT_CSS = """
    ProfileScreen #profile-top { height: auto; margin: 1 1 0 1; }
    ProfileScreen #avatar { width: 18; margin-right: 2; }
    ProfileScreen #profile-info { height: auto; width: 1fr; }
    ProfileScreen #requests { height: auto; max-height: 10; margin: 0 1; border: none; }
    ProfileScreen #requests-title { margin: 1 1 0 1; }
    ProfileScreen .hint { margin: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back"),
                                            *key_bindings(PROFILE_KEYS)]

    def __init__(self, client: Any, handle: str | None = None) -> None:
        super().__init__()
        self.client = client
        self.handle = None if handle in (None, client.handle) else handle
        self.view: Any = None
        self.state = ""  # "following", "requested" or "" (others' profiles)
        self.requests: list[Any] = []
        self.nft_shown: Any = None  # the NFT avatar whose picture is shown

    @property
    def own(self) -> bool:
        return self.handle is None

    def compose(self) -> ComposeResult:
        yield Static(render.plain(f"Profile · @{self.handle or self.client.handle}"),
                     classes="title",
                     id="profile-title")
        with Horizontal(id="profile-top"):
            yield ImagePreview(id="avatar", max_rows=8, max_columns=16, empty="(no avatar)")
            yield Static("loading…", id="profile-info")
        yield Static("Follow requests", id="requests-title", classes="title")
        yield OptionList(id="requests")
        yield Static(self._hint(), id="profile-hint", classes="hint")

    def _hint(self) -> str:
        if self.own:
            return "e edit · a approve · x deny · o open a profile · Esc back"
        return "f follow / unfollow · o open a profile · Esc back"

    def on_mount(self) -> None:
        for name in ("#requests-title", "#requests"):
            self.query_one(name).display = False
        self.load()

    @work(group="profile", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        social = self.client.social
        info = self.query_one("#profile-info", Static)
        try:
            self.view = await social.profile(self.handle)
            followers = await social.followers(self.handle)
            following = await social.following(self.handle)
            self.state = ""
            if not self.own:
                mine = next((v for v in await social.following() if v.user == self.view.user),
                            None)
                self.state = "" if mine is None else (
                    "following" if mine.approved or not self._private() else "requested")
            self.requests = await social.requests() if self.own else []
        except ERRORS as exc:
            info.update(Text(str(exc), "bold"))
            return
        profile = self.view.profile
        out = Text()
        if profile and profile.display_name:  # no name: the handle once, as the heading
            out.append(for_terminal(profile.display_name), "bold")
            out.append(f"\n@{self.view.handle}", "dim")
        else:
            out.append(f"@{self.view.handle}", "bold")
        if self._private():
            out.append(" · 🔒 private account", "dim")
        out.append("\n\n")
        out.append(for_terminal(profile.bio) if profile and profile.bio else "(no bio)",
                   "" if profile and profile.bio else "dim")
        out.append(f"\n\n{plural(len(followers), 'follower')} · {len(following)} following")
        if not self.own:
            out.append(f"\n{self._state_line()}", "italic")
        info.update(out)
        self._show_requests()
        if profile is not None and profile.nft_avatar is not None and \
                await self._show_nft(self.view.user, profile.nft_avatar):
            return
        if profile is not None and profile.avatar is not None:
            try:
                data = await fetch_blob(self.client, profile.avatar)
            except (*ERRORS, ValueError) as exc:
                self.query_one("#avatar", ImagePreview).empty = f"(avatar: {exc})"
                return
            self.query_one("#avatar", ImagePreview).set_image(data)

    async def _show_nft(self, user: bytes, nft: Any) -> bool:
        """The NFT avatar's picture (tokenURI metadata, then its image; cached), shown only
        while a verified wallet of the profile's owner holds the token. Whether shown."""
        avatar = self.query_one("#avatar", ImagePreview)
        try:
            data = await self.client.wallet.nft_image(user, nft)
        except (*ERRORS, ValueError) as exc:
            log.info("NFT avatar not shown: %s", exc)
            return False
        if data is None:
            return False
        self.nft_shown = nft
        avatar.set_image(await shrink(data))
        return True

    def _private(self) -> bool:
        return bool(self.view and self.view.profile and self.view.profile.private)

    def _state_line(self) -> str:
        return {"following": "You follow them (f unfollows).",
                "requested": "You asked to follow (f withdraws)."}.get(
            self.state, "You don't follow them (f follows"
            + (", they approve)." if self._private() else ")."))

    def _show_requests(self) -> None:
        pending = [r for r in self.requests if not r.approved]
        title, table = self.query_one("#requests-title"), self.query_one("#requests",
                                                                          OptionList)
        title.display = table.display = self.own
        table.clear_options()
        if not self.own:
            return
        self.requests = pending
        if pending:
            table.add_options([Option(render.plain(f"@{r.handle or '?'} asks to follow you"))
                               for r in pending])
            table.highlighted = 0
            table.focus()
        else:
            table.add_option(Option("No requests waiting.", disabled=True))

    # --- actions ------------------------------------------------------------------------

    @work(group="profile-action", exclusive=True, exit_on_error=False)
    async def _do(self, request: Any, done: str) -> None:
        try:
            result = await request
        except ERRORS as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(done.format(result=result))
        self.load()

    def action_toggle_follow(self) -> None:
        if self.own or self.view is None:
            return
        social = self.client.social
        if self.state:
            self._do(social.unfollow(self.handle), f"Unfollowed @{self.handle}.")
        else:
            self._do(social.follow(self.handle), f"@{self.handle}: {{result}}.")

    def _request(self) -> Any:
        if not self.own or not self.requests:
            return None
        index = self.query_one("#requests", OptionList).highlighted
        return self.requests[index] if index is not None and index < len(self.requests) \
            else None

    def action_approve(self) -> None:
        req = self._request()
        if req is not None and req.handle:
            self._do(self.client.social.approve(req.handle), f"Approved @{req.handle}.")

    def action_deny(self) -> None:
        req = self._request()
        if req is not None and req.handle:
            self._do(self.client.social.deny(req.handle), f"Denied @{req.handle}.")

    def action_edit_profile(self) -> None:
        if not self.own:
            return

        def saved(view: Any) -> None:
            if view is not None:
                self.notify("Profile saved.")
                self.load()

        self.app.push_screen(EditProfileScreen(self.client, self.view), saved)

    def action_other_profile(self) -> None:
        from .prompt import PromptScreen

        def chosen(handle: str | None) -> None:
            if handle and handle.strip():
                self.app.push_screen(ProfileScreen(self.client, handle.strip().lstrip("@")))

        self.app.push_screen(PromptScreen("Open a profile", placeholder="@handle",
                                          hint="Enter opens · Esc cancels"), chosen)


class EditProfileScreen(ModalScreen[Any]):
    """Saves on Ctrl+S (signed and published by the core), dismissing with the view."""

    DEFAULT_CSS = "EditProfileScreen Checkbox { margin-top: 1; }"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel"),
                Binding("ctrl+s", "save", "Save")]

    def __init__(self, client: Any, view: Any) -> None:
        super().__init__()
        self.client = client
        self.profile = view.profile if view is not None else None

    def compose(self) -> ComposeResult:
        p = self.profile
        with VerticalScroll(classes="dialog wide", id="edit-profile"):
            yield Static("Edit your profile", classes="title")
            yield Static("Ctrl+S saves · Tab next field · Esc cancels", id="edit-hint",
                         classes="hint")
            yield Input(p.display_name if p else "", placeholder="display name", id="name")
            yield Input(p.bio if p else "", placeholder="bio", id="bio")
            yield Checkbox("private: I approve each follower", p.private if p else False,
                           id="private")
            yield ImagePicker(id="avatar-picker",
                              placeholder="new avatar image (optional; Tab completes)")

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    @on(Input.Submitted)
    def _next(self) -> None:
        self.focus_next()

    def action_save(self) -> None:
        self._save()

    @work(exclusive=True, group="edit-profile")
    async def _save(self) -> None:
        hint = self.query_one("#edit-hint", Static)
        hint.update("saving…")
        picker = self.query_one(ImagePicker)
        try:
            with tempfile.TemporaryDirectory(prefix="tenchat-avatar-") as folder:
                avatar = await picker.prepared(Path(folder))
                view = await self.client.social.set_profile(
                    name=self.query_one("#name", Input).value.strip(),
                    bio=self.query_one("#bio", Input).value.strip(),
                    avatar=avatar, private=self.query_one("#private", Checkbox).value)
        except (*ERRORS, ValueError) as exc:
            hint.update(render.plain(str(exc), "bold"))
            return
        self.dismiss(view)
