"""Profiles and follows through the scripted CLI and a real relay."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.slow


def test_profile_set_and_show(cli: Cli, tmp_path: Path) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    assert cli("bob", "profile", "show", "alice", "--json").json()["profile"] is None
    avatar = tmp_path / "me.png"
    avatar.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    mine = cli("alice", "--json", "profile", "set", "--name", "Alice A.", "--bio", "hello",
               "--avatar", str(avatar)).json()
    assert mine["display_name"] == "Alice A." and mine["avatar"]["name"] == "me.png"
    cli("alice", "profile", "set", "--bio", "new bio")  # the other fields stay
    seen = cli("bob", "profile", "show", "@alice", "--json", "--avatar-out",
               str(tmp_path / "got.png")).json()
    assert (seen["handle"], seen["display_name"], seen["bio"], seen["private"]) == (
        "alice", "Alice A.", "new bio", False)
    assert (tmp_path / "got.png").read_bytes() == avatar.read_bytes()
    assert "Alice A." in cli("alice", "profile", "show").out
    res = cli("alice", "profile", "set", "--name", "x" * 65, check=False)
    assert res.code == 1 and res.err.startswith("error: ") and "64" in res.err


def test_follow_public_and_private(cli: Cli) -> None:
    for name in ("alice", "bob", "carol"):
        cli(name, "init", "--handle", name)
    assert cli("alice", "--json", "follow", "bob").json()["state"] == "following"
    cli("carol", "profile", "set", "--private")
    assert cli("alice", "follow", "carol", "--json").json()["state"] == "requested"
    assert cli("bob", "follow", "carol", "--json").json()["state"] == "requested"
    reqs = cli("carol", "requests", "--json").json_lines()
    assert sorted(r["handle"] for r in reqs) == ["alice", "bob"]
    cli("carol", "requests", "--approve", "alice")
    cli("carol", "requests", "--deny", "@bob")
    assert cli("carol", "requests", "--json").json_lines() == []
    got = cli("bob", "followers", "carol", "--json").json_lines()
    assert [(r["handle"], r["approved"]) for r in got] == [("alice", True)]
    assert sorted(r["handle"] for r in cli("alice", "following", "--json").json_lines()) == [
        "bob", "carol"]
    assert cli("alice", "followers", "bob").out.strip() == "@alice"
    res = cli("alice", "requests", "--approve", "bob", check=False)
    assert res.code == 1 and "not asked" in res.err
    cli("alice", "unfollow", "bob")
    assert cli("bob", "followers", "--json").json_lines() == []
    res = cli("alice", "follow", "alice", check=False)
    assert res.code == 1 and "yourself" in res.err
