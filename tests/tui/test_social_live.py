"""The social screens against a real relay and the real CLI: the feed (a CLI post shows,
a reaction and a comment from the TUI reach the CLI), profiles (follow, approve), an
attachment sent from the TUI with a filter and downloaded by the CLI, and an image
attachment previewed in half-blocks."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tenchat.client.tui.screens.attach import AttachScreen
from tenchat.client.tui.screens.feed import FeedScreen
from tenchat.client.tui.screens.image_view import ImageScreen
from tenchat.client.tui.screens.post import PostScreen
from tenchat.client.tui.screens.profile import ProfileScreen
from tenchat.client.tui.widgets.image_picker import ImagePicker
from tenchat.client.tui.widgets.image_preview import ImagePreview
from tenchat.client.tui.widgets.message_log import MessageLog
from tests.conftest import Cli
from tests.support.relay import RelayProcess
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, chat_composed, in_thread, screen_text, tui, until

pytestmark = pytest.mark.slow


def png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 20)) -> Path:
    Image.new("RGB", size, colour).save(path, "PNG")
    return path


async def chat_ready(pilot: Any, app: Any) -> Any:
    chat = await until(pilot, lambda: chat_composed(app), what="chat screen")
    await until(pilot, lambda: chat.client.connection_state == "online", what="online")
    return chat


@async_test
async def test_feed_shows_cli_post_and_tui_reaction_and_comment_reach_cli(
        cli: Cli, relay: RelayProcess) -> None:
    def setup() -> None:
        cli("alice", "init", "--handle", "alice")
        cli("bob", "init", "--handle", "bob")
        cli("bob", "profile", "set", "--name", "Bob Builder")
        cli("alice", "follow", "bob")
        cli("bob", "post", "first post from the CLI")

    await in_thread(setup)
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        await chat_ready(pilot, app)
        await pilot.press("f2")
        feed = await until(pilot, lambda: isinstance(app.screen, FeedScreen) and app.screen)
        await until(pilot, lambda: "first post from the CLI" in screen_text(app), what="post")
        # the display name comes from bob's verified profile
        assert "Bob Builder @bob" in screen_text(app)
        await pilot.press("e", "2")  # ❤️
        await until(pilot, lambda: feed.posts and feed.posts[0].reactions.get("❤️") == 1,
                    what="reaction counted")
        got = (await in_thread(cli, "bob", "--json", "feed")).json_lines()
        assert got[0]["text"] == "first post from the CLI"
        assert got[0]["reactions"] == {"❤️": 1}
        await pilot.press("c", *"nice one", "enter")
        await until(pilot, lambda: feed.posts[0].comments == 1, what="comment counted")
        comments = (await in_thread(cli, "bob", "--json", "comments",
                                    got[0]["id"])).json_lines()
        assert [(c["author"], c["text"]) for c in comments] == [("alice", "nice one")]
        # Enter opens the post with its comments
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PostScreen), what="post screen")
        await until(pilot, lambda: "@alice" in screen_text(app)
                    and "nice one" in screen_text(app), what="comment shown")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is feed)
        # a new post from the TUI: text only, followers-only; the CLI of a follower sees it
        await pilot.press("n", *"from the tui")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any(p.text == "from the tui" for p in feed.posts),
                    what="own post in the feed")
        await in_thread(cli, "bob", "follow", "alice")
        bob_feed = (await in_thread(cli, "bob", "--json", "feed")).json_lines()
        assert [p["text"] for p in bob_feed] == ["from the tui", "first post from the CLI"]


@async_test
async def test_profile_follow_and_approve_from_tui(cli: Cli, relay: RelayProcess) -> None:
    def setup() -> None:
        for name in ("alice", "bob", "carol"):
            cli(name, "init", "--handle", name)
        cli("bob", "profile", "set", "--name", "Bob Builder", "--bio", "builds things")
        cli("alice", "profile", "set", "--private")
        cli("carol", "follow", "alice")  # a request: alice is private

    await in_thread(setup)
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        await chat_ready(pilot, app)
        await pilot.press("f3")
        own = await until(pilot, lambda: isinstance(app.screen, ProfileScreen) and app.screen)
        await until(pilot, lambda: "@carol asks to follow you" in screen_text(app),
                    what="request listed")
        # no display name: the handle is the heading, once (not "@alice" over "@alice")
        info = str(own.query_one("#profile-info").render())
        assert info.count("@alice") == 1, info
        await pilot.press("a")
        await until(pilot, lambda: "No requests waiting" in screen_text(app)
                    and "1 follower" in screen_text(app), what="approved")
        followers = (await in_thread(cli, "alice", "--json", "followers")).json_lines()
        assert [f["handle"] for f in followers] == ["carol"]
        # someone else's profile, by handle, then follow
        await pilot.press("o", *"bob", "enter")
        bob = await until(pilot, lambda: app.screen is not own
                          and isinstance(app.screen, ProfileScreen) and app.screen)
        await until(pilot, lambda: "builds things" in screen_text(app), what="bob's bio")
        assert "Bob Builder" in screen_text(app)
        await pilot.press("f")
        await until(pilot, lambda: bob.state == "following", what="following")
        await until(pilot, lambda: "You follow them" in screen_text(app))
        got = (await in_thread(cli, "bob", "--json", "followers")).json_lines()
        assert [f["handle"] for f in got] == ["alice"]
        await pilot.press("f")
        await until(pilot, lambda: bob.state == "" and "You don't follow" in screen_text(app),
                    what="unfollowed")
        assert (await in_thread(cli, "bob", "--json", "followers")).json_lines() == []


@pytest.mark.usefixtures("paired")
@async_test
async def test_attachment_sent_from_tui_with_filter_downloads_in_cli(
        cli: Cli, relay: RelayProcess, tmp_path: Path) -> None:
    photo = png(tmp_path / "photo.png", (200, 30, 30))
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        chat = await chat_ready(pilot, app)
        await until(pilot, lambda: chat.peer is not None, what="conversation open")
        await pilot.press("alt+a")
        screen = await until(pilot, lambda: isinstance(app.screen, AttachScreen) and app.screen)
        await pilot.press(*str(tmp_path / "pho"), "tab")  # Tab completes the name
        picker = screen.query_one(ImagePicker)
        await until(pilot, lambda: picker.path == photo and picker.is_image, what="picked")
        picker.set_filter("grayscale")
        preview = picker.query_one(ImagePreview)

        def grey() -> bool:
            spans = preview._text(preview.size.width).spans
            colours = {s.style.color.triplet for s in spans if s.style.color}  # type: ignore
            return bool(colours) and all(c.red == c.green == c.blue for c in colours)

        await until(pilot, grey, what="grayscale preview")
        await pilot.press("tab", "tab", *"a red square", "enter")
        log = chat.query_one(MessageLog)
        await until(pilot, lambda: any(r.text == "a red square" and r.status >= 1
                                       for r in log.rows), what="attachment sent")
    inbox = (await in_thread(cli, "bob", "--json", "inbox")).json_lines()
    sent = next(m for m in inbox if m.get("text") == "a red square")
    out = tmp_path / "got"
    out.mkdir()
    await in_thread(cli, "bob", "download", sent["id"], "-o", str(out))
    got = Image.open(io.BytesIO((out / "photo.png").read_bytes())).convert("RGB")
    r, g, b = got.getpixel((5, 5))  # type: ignore[misc]
    assert r == g == b and 60 < r < 120  # the grayscale of (200, 30, 30), not the original


@pytest.mark.usefixtures("paired")
@async_test
async def test_image_attachment_previews_in_half_blocks(cli: Cli, relay: RelayProcess,
                                                        tmp_path: Path) -> None:
    def setup() -> None:
        cli("bob", "send", "alice", "look", "--attach",
            str(png(tmp_path / "blue.png", (10, 40, 230))))

    await in_thread(setup)
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        chat = await chat_ready(pilot, app)
        log = chat.query_one(MessageLog)
        await until(pilot, lambda: any(r.text == "look" for r in log.rows), what="attachment")
        for _ in range(20):  # the log may be redrawn as the conversation finishes loading
            await pilot.press("ctrl+up")
            await pilot.pause(0.2)
            if log.selected is not None:
                break
        assert log.selected is not None and log.selected.text == "look"
        await pilot.press("o")
        screen = await until(pilot, lambda: isinstance(app.screen, ImageScreen) and app.screen,
                             what="preview")
        preview = screen.query_one(ImagePreview)
        await until(pilot, lambda: "▀" in screen_text(app), what="half-blocks drawn")
        spans = preview._text(preview.size.width).spans
        assert spans and all(s.style.color.triplet == (10, 40, 230)  # type: ignore[union-attr]
                             and s.style.bgcolor.triplet == (10, 40, 230)  # type: ignore
                             for s in spans)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is chat)


@async_test
async def test_story_viewer_advances_by_itself_and_by_arrows(cli: Cli, relay: RelayProcess,
                                                               tmp_path: Path) -> None:
    from tenchat.client.tui.screens.stories import StoryScreen

    def setup() -> list[str]:
        cli("alice", "init", "--handle", "alice")
        cli("bob", "init", "--handle", "bob")
        cli("alice", "follow", "bob")
        first = cli("bob", "story", "post", "morning zebra", "--json").json()["id"]
        second = cli("bob", "story", "post", str(png(tmp_path / "s.png", (250, 200, 0))),
                     "--text", "a yellow one", "--json").json()["id"]
        return [first, second]

    ids = await in_thread(setup)
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        await chat_ready(pilot, app)
        await pilot.press("f2")  # the feed's header lists who has unseen stories
        await until(pilot, lambda: "● @bob" in screen_text(app), what="story bar")
        await pilot.press("s")
        viewer = await until(pilot, lambda: isinstance(app.screen, StoryScreen) and app.screen,
                             what="viewer")
        await until(pilot, lambda: "morning zebra" in screen_text(app), what="first story")
        # it moves on by itself after about 5 s, to the image story
        await until(pilot, lambda: viewer.index == 1 and "a yellow one" in screen_text(app),
                    timeout=15, what="advanced by itself")
        preview = viewer.query_one(ImagePreview)
        spans = preview._text(preview.size.width).spans
        assert spans and {s.style.color.triplet for s in spans} == {(250, 200, 0)}  # type: ignore
        await pilot.press("left")
        await until(pilot, lambda: viewer.index == 0 and "morning zebra" in screen_text(app),
                    what="back with ←")
        await pilot.press("right")
        await until(pilot, lambda: viewer.index == 1, what="on with →")
        await pilot.press("right")  # past the last: the viewer closes
        await until(pilot, lambda: isinstance(app.screen, FeedScreen), what="closed")
        await until(pilot, lambda: "○ @bob" in screen_text(app), what="marked seen")
    # bob's CLI has alice's view receipts for both
    for story in ids:
        viewers = (await in_thread(cli, "bob", "--json", "story", "viewers", story)).json_lines()
        assert [v["handle"] for v in viewers] == ["alice"]


@async_test
async def test_post_with_a_filtered_image_from_tui(cli: Cli, relay: RelayProcess,
                                                    tmp_path: Path) -> None:
    def setup() -> None:
        cli("alice", "init", "--handle", "alice")
        cli("bob", "init", "--handle", "bob")
        cli("bob", "follow", "alice")

    await in_thread(setup)
    photo = png(tmp_path / "sky.png", (30, 120, 220))
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        await chat_ready(pilot, app)
        await pilot.press("f2")
        feed = await until(pilot, lambda: isinstance(app.screen, FeedScreen) and app.screen)
        await pilot.press("n", *"grey sky", "tab", "tab", *str(photo))
        picker = await until(pilot, lambda: (p := app.screen.query_one(ImagePicker))
                             and p.path == photo and p.is_image and p, what="image chosen")
        picker.set_filter("grayscale")
        await pilot.pause(0.3)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: feed.posts and feed.posts[0].text == "grey sky",
                    what="posted")
        assert "🖼 1 image" in screen_text(app)
        await pilot.press("enter")
        screen = await until(pilot, lambda: isinstance(app.screen, PostScreen) and app.screen)
        preview = screen.query_one("#post-image", ImagePreview)
        await until(pilot, lambda: preview.data is not None, what="image downloaded")
        colours = {s.style.color.triplet  # type: ignore[union-attr]
                   for s in preview._text(preview.size.width).spans}
        assert len(colours) == 1 and len({*next(iter(colours))}) == 1  # one grey
    posts = (await in_thread(cli, "bob", "--json", "feed")).json_lines()
    assert posts[0]["text"] == "grey sky" and posts[0]["audience"] == "public"
    assert [(i["name"], i["mime"]) for i in posts[0]["images"]] == [("sky.png", "image/png")]


@async_test
async def test_feed_loads_older_pages_as_the_cursor_nears_the_end(
        cli: Cli, relay: RelayProcess) -> None:
    from textual.widgets import OptionList

    from tenchat.client.service import Client
    from tests.conftest import PASSPHRASE

    def setup() -> None:
        cli("alice", "init", "--handle", "alice")
        cli("bob", "init", "--handle", "bob")
        cli("alice", "follow", "bob")

    await in_thread(setup)
    bob = await Client.unlock(cli.home("bob"), relay.url, PASSPHRASE)
    try:
        for n in range(27):
            await bob.social.post(f"post number {n}")
    finally:
        await bob.close()
    app = tui(cli.home("alice"), relay.url)
    async with app.run_test(size=SIZE) as pilot:
        await chat_ready(pilot, app)
        await pilot.press("f2")
        feed = await until(pilot, lambda: isinstance(app.screen, FeedScreen) and app.screen)
        posts = feed.query_one("#posts", OptionList)
        await until(pilot, lambda: posts.option_count == 20, what="first page")
        assert feed.more and feed.posts[0].text == "post number 26"
        await pilot.press("end")
        await until(pilot, lambda: posts.option_count == 27, what="second page")
        assert [p.text for p in feed.posts] == [f"post number {n}" for n in range(26, -1, -1)]
        assert not feed.more
