"""Peer text in the TUI (issue 12 item 1): never read as Rich/Textual markup, terminal
controls made visible, and a Markdown link shows where it really goes."""

from __future__ import annotations

from rich.console import Console

from tenchat.client.polls import PollView
from tenchat.client.tui.render import body, poll_card, preview
from tenchat.client.tui.screens.confirm import ConfirmScreen
from tenchat.client.tui.screens.vote import VoteScreen
from tests.support.wsclient import async_test
from tests.tui.conftest import SIZE, screen_text, until
from tests.tui.test_poll_sticker_screens import Host

MARKUP = "[@click=app.quit]free coins[/] [b]bold?[/b] [red]red?[/red]"


def rendered(renderable: object) -> str:
    console = Console(width=100, color_system=None, force_terminal=False)
    with console.capture() as cap:
        console.print(renderable)
    return cap.get()


def test_a_markdown_link_shows_its_real_target() -> None:
    out = rendered(body("log in at [https://bank.example](https://evil.example/login) **now**"))
    assert "https://bank.example (https://evil.example/login)" in out
    image = rendered(body("![logo](https://evil.example/x.png) *hi*"))
    assert "logo" in image and "(https://evil.example/x.png)" in image
    # a link whose text is its target shows once
    out = rendered(body("see <https://ok.example> **now**"))
    assert out.count("https://ok.example") == 1


def test_bodies_and_previews_are_inert() -> None:
    for text in (MARKUP, "**md** " + MARKUP, "a\x1b]0;pwned\x07b\r\x1b[2J\u202e"):
        out = rendered(body(text))
        assert "\x1b" not in out and "\x07" not in out and "\r" not in out
        assert "\u202e" not in out
    assert "[@click=app.quit]free coins[/]" in rendered(body(MARKUP))
    assert preview("x\x1b[2Jy", 20) == "x␛[2Jy"
    view = PollView(b"c" * 32, b"p" * 16, b"u" * 32, "Q\x1b[2J?", ["a\x1b]0;t\x07", "b"],
                    False, False, False, [1, 0], 1, [], None)
    assert all("\x1b" not in line for line, _ in poll_card(view, 60))


@async_test
async def test_poll_question_and_options_are_not_markup() -> None:
    view = PollView(b"c" * 32, b"p" * 16, b"u" * 32, MARKUP, ["[b]yes[/b]", "[i]no"],
                    False, False, False, [0, 0], 0, [], None)
    app = Host(VoteScreen(view))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "free coins" in screen_text(app))
        text = screen_text(app)
        assert "[@click=app.quit]free coins[/]" in text and "[b]bold?[/b]" in text
        assert "[b]yes[/b]" in text


@async_test
async def test_confirm_and_notifications_are_not_markup() -> None:
    from tenchat.client.tui.app import TenchatApp

    app = Host(ConfirmScreen(f"Close the poll “{MARKUP}”?"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "free coins" in screen_text(app))
        assert "[@click=app.quit]free coins[/]" in screen_text(app)

    sent: list[tuple[str, bool]] = []

    class Probe(TenchatApp):
        def __init__(self) -> None:  # no client: only notify is under test
            pass

    probe = Probe()
    import textual.app

    original = textual.app.App.notify
    try:
        textual.app.App.notify = lambda self, message, **kw: sent.append(  # type: ignore[method-assign]
            (message, kw["markup"]))
        probe.notify(f"relay refused: {MARKUP}\x1b[2J")
    finally:
        textual.app.App.notify = original  # type: ignore[method-assign]
    assert sent == [(f"relay refused: {MARKUP}␛[2J", False)]
