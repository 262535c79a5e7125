"""Comments and reactions through the scripted CLI and a real relay: counts in another
user's feed, sealed comments on followers-only posts, never plaintext on the relay."""

from __future__ import annotations

import pytest

from tests.conftest import Cli
from tests.e2e.test_cli_posts import relay_bytes

pytestmark = pytest.mark.slow


def test_comment_and_react_on_a_public_post(cli: Cli) -> None:
    for name in ("alice", "bob", "carol"):
        cli(name, "init", "--handle", name)
    cli("bob", "follow", "alice")
    cli("carol", "follow", "alice")
    pid = cli("alice", "--json", "post", "hello world").json()["id"]
    assert cli("bob", "--json", "comment", pid[:8], "first!").json()["text"] == "first!"
    cli("carol", "comment", pid, "second")
    cli("bob", "react-post", pid[:6], "👍")
    cli("carol", "react-post", pid, "👍")
    cli("carol", "react-post", pid, "🎉")
    cli("carol", "react-post", pid, "🎉", "--remove")
    [p] = cli("alice", "feed", "--json").json_lines()
    assert (p["comments"], p["reactions"]) == (2, {"👍": 2})
    assert "2 comments  👍 2" in cli("bob", "feed").out
    got = cli("alice", "comments", pid[:10], "--json").json_lines()
    assert [(c["author"], c["text"]) for c in got] == [("carol", "second"), ("bob", "first!")]
    assert "first!" in cli("alice", "comments", pid).out
    res = cli("bob", "comment", "zzzzzz", "x", check=False)
    assert res.code == 1 and "hex" in res.err
    res = cli("bob", "comment", "abc", "x", check=False)
    assert res.code == 1 and "6" in res.err
    res = cli("bob", "comment", pid, "x" * 2001, check=False)
    assert res.code == 1 and "2000" in res.err


def test_comments_on_a_followers_only_post_are_sealed(cli: Cli) -> None:
    for name in ("alice", "bob", "carol"):
        cli(name, "init", "--handle", name)
    cli("alice", "profile", "set", "--private")
    cli("bob", "follow", "alice")
    cli("alice", "requests", "--approve", "bob")
    pid = cli("alice", "--json", "post", "secret post").json()["id"]
    cli("bob", "comment", pid, "quiet giraffe reply")
    cli("alice", "comment", pid, "author answers okapi")
    cli("bob", "react-post", pid, "❤️")
    assert b"quiet giraffe reply" not in relay_bytes(cli)
    assert b"author answers okapi" not in relay_bytes(cli)
    got = cli("alice", "comments", pid, "--json").json_lines()
    assert [(c["author"], c["text"]) for c in got] == [
        ("alice", "author answers okapi"), ("bob", "quiet giraffe reply")]
    [p] = cli("bob", "feed", "--json").json_lines()
    assert (p["comments"], p["reactions"]) == (2, {"❤️": 1})
    # carol, not a follower, sees the post locked with its counts, and can't comment
    # (commands find posts in one's own feed: whom one follows, and oneself)
    [p] = cli("carol", "feed", "--json", "--from", "alice").json_lines()
    assert p["text"] is None and p["comments"] == 2
    res = cli("carol", "comment", pid, "let me in", check=False)
    assert res.code == 1 and "in your feed" in res.err
