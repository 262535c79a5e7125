"""Posts and the feed through the scripted CLI and a real relay: followers-only posts are
readable by approved followers only, and never plaintext on the relay."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.slow

LOCKED = "[followers-only post you can't read]"


def relay_bytes(cli: Cli) -> bytes:
    assert cli.relay is not None
    files = sorted(cli.relay.data_dir.rglob("*.sqlite3*"))
    assert files
    return b"".join(p.read_bytes() for p in files)


def texts(cli: Cli, who: str, *args: str) -> list[tuple[str, str | None, str]]:
    return [(p["author"], p["text"], p["audience"])
            for p in cli(who, "feed", "--json", *args).json_lines()]


def test_public_posts_and_paging(cli: Cli, tmp_path: Path) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    cli("bob", "follow", "alice")
    img = tmp_path / "cat.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    first = cli("alice", "--json", "post", "hello world", "--image", str(img)).json()
    assert first["audience"] == "public" and first["images"][0]["name"] == "cat.png"
    cli("alice", "post", "second")
    cli("bob", "post", "bob here")
    feed = cli("bob", "feed", "--json").json_lines()
    assert [(p["author"], p["text"]) for p in feed] == [
        ("bob", "bob here"), ("alice", "second"), ("alice", "hello world")]
    assert feed[2]["images"][0]["size"] == img.stat().st_size
    page = cli("bob", "feed", "--json", "-n", "1", "--before", feed[0]["id"]).json_lines()
    assert [p["text"] for p in page] == ["second"]
    assert "hello world" in cli("alice", "feed").out
    res = cli("alice", "post", "x" * 5001, check=False)
    assert res.code == 1 and "5000" in res.err


def test_followers_only_posts(cli: Cli) -> None:
    for name in ("alice", "bob", "carol"):
        cli(name, "init", "--handle", name)
    cli("alice", "profile", "set", "--private")
    assert cli("bob", "follow", "alice", "--json").json()["state"] == "requested"
    cli("alice", "requests", "--approve", "bob")
    out = cli("alice", "--json", "post", "secret one zebra").json()
    assert out["audience"] == "followers"
    res = cli("alice", "post", "public?", "--audience", "public", check=False)
    assert res.code == 1 and "private" in res.err

    # the approved follower reads it; the author too; a non-follower can't
    assert texts(cli, "bob") == [("alice", "secret one zebra", "followers")]
    assert texts(cli, "alice") == [("alice", "secret one zebra", "followers")]
    assert texts(cli, "carol", "--from", "alice") == [("alice", None, "followers")]
    assert LOCKED in cli("carol", "feed", "--from", "alice").out
    assert b"secret one zebra" not in relay_bytes(cli)

    # carol is approved, then unfollows: the next post is under a new key
    cli("carol", "follow", "alice")
    cli("alice", "requests", "--approve", "carol")
    cli("alice", "post", "for bob and carol")
    assert texts(cli, "carol", "-n", "1") == [("alice", "for bob and carol", "followers")]
    cli("carol", "unfollow", "alice")
    cli("alice", "post", "after carol left")
    assert texts(cli, "carol", "--from", "alice", "-n", "1") == [("alice", None, "followers")]

    # bob is removed: he keeps what he could read, not what comes after
    cli("alice", "requests", "--deny", "bob")
    cli("alice", "post", "after bob left")
    assert texts(cli, "bob", "--from", "alice") == [
        ("alice", None, "followers"), ("alice", "after carol left", "followers"),
        ("alice", "for bob and carol", "followers"), ("alice", "secret one zebra", "followers")]
    assert [t for _, t, _ in texts(cli, "alice")][:2] == ["after bob left", "after carol left"]
    for secret in (b"for bob and carol", b"after carol left", b"after bob left"):
        assert secret not in relay_bytes(cli)
