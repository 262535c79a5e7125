"""Polls by script through a real relay: 1:1 and a 3-member group; votes, a vote replaced,
close, invalid and late votes ignored, anonymous polls showing counts but no names."""

from __future__ import annotations

import pytest

from tests.conftest import Cli
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


def counts(poll: dict) -> list[int]:
    return [o["count"] for o in poll["options"]]


def test_poll_one_to_one(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    made = cli("alice", "poll", "create", "bob", "Lunch?", "--option", "pizza",
               "--option", "sushi", "--option", "salad", "--json").json()
    pid = made["id"]
    for args in (["-o", "only one"], ["-o", "a", "-o", "A"], ["-o", "x", "-o", ""]):
        res = cli("alice", "poll", "create", "bob", "Bad?", *args, check=False)
        assert res.code == 1 and res.err.startswith("error:"), args
        assert res.err.count("\n") == 1, args
    # Bob sees it in his history as a poll message, and votes; then changes his mind.
    hist = cli("bob", "--json", "history", "alice").json_lines()
    assert hist[-1]["id"] == pid and hist[-1]["text"] == "[poll] Lunch?"
    assert hist[-1]["poll"]["options"] == ["pizza", "sushi", "salad"]
    first = cli("bob", "poll", "vote", "alice", pid[:8], "1", "--json").json()
    assert counts(first) == [1, 0, 0] and first["mine"] == [1]
    cli("bob", "poll", "vote", "alice", pid, "2")
    cli("alice", "poll", "vote", "bob", pid, "2")
    shown = cli("alice", "poll", "show", "bob", pid, "--json").json()
    assert counts(shown) == [0, 2, 0] and shown["voters"] == 2
    assert shown["options"][1]["voters"] == ["bob", "alice"]
    assert shown["closed"] is False and shown["multiple"] is False
    # Bad votes are refused here with one error line.
    for args in (["4"], ["1", "2"], ["0"]):
        res = cli("bob", "poll", "vote", "alice", pid, *args, check=False)
        assert res.code != 0 and res.err.startswith("error:") and res.err.count("\n") == 1
    # Only the creator closes it; after that no vote counts.
    res = cli("bob", "poll", "close", "alice", pid, check=False)
    assert res.code == 1 and "creator" in res.err
    closed = cli("alice", "poll", "close", "bob", pid, "--json").json()
    assert closed["closed"] is True
    res = cli("bob", "poll", "vote", "alice", pid, "3", check=False)
    assert res.code == 1 and "closed" in res.err
    after = cli("bob", "poll", "show", "alice", pid, "--json").json()
    assert after["closed"] is True and counts(after) == [0, 2, 0]
    human = cli("bob", "poll", "show", "alice", pid).out
    assert "Lunch?" in human and "closed" in human and "@alice" in human


def test_poll_group_named_and_anonymous(cli: Cli, relay: RelayProcess) -> None:
    for name in ("alice", "bob", "carol", "dave"):
        cli(name, "init", "--handle", name)
    cli("alice", "group", "create", "Ops", "bob", "carol")
    pid = cli("alice", "--json", "poll", "create", "ops", "Release day?", "-o", "Mon",
              "-o", "Tue", "-o", "Wed", "--multiple").json()["id"]
    cli("bob", "poll", "vote", "ops", pid, "1", "3")
    cli("carol", "poll", "vote", "ops", pid, "3")
    cli("carol", "poll", "vote", "ops", pid, "2", "3")  # replaces her first vote
    for who in ("alice", "bob", "carol"):
        view = cli(who, "--json", "poll", "show", "ops", pid).json()
        assert counts(view) == [1, 1, 2], who
        assert view["voters"] == 2
        assert [o["voters"] for o in view["options"]] == [["bob"], ["carol"],
                                                          ["bob", "carol"]], who
    # dave, no member, can't even find the group; alice closes; a late vote counts nowhere.
    res = cli("dave", "poll", "vote", "ops", pid, "1", check=False)
    assert res.code == 1 and res.err.startswith("error:")
    cli("bob", "poll", "show", "ops", pid)  # bob has synced the poll (still open for him)
    cli("alice", "poll", "close", "ops", pid)
    res = cli("bob", "poll", "vote", "ops", pid, "2", check=False)
    assert res.code == 1 and "closed" in res.err

    # Anonymous: members see counts, never names; only alice (the creator) holds the votes.
    anon = cli("alice", "--json", "poll", "create", "ops", "Rate the sprint", "-o", "good",
               "-o", "bad", "--anonymous").json()["id"]
    cli("bob", "poll", "vote", "ops", anon, "1")
    cli("carol", "poll", "vote", "ops", anon, "2")
    cli("carol", "poll", "vote", "ops", anon, "1")  # replaced
    mine = cli("alice", "--json", "poll", "show", "ops", anon).json()
    assert counts(mine) == [2, 0] and mine["anonymous"] is True
    assert all("voters" not in o for o in mine["options"])
    for who in ("bob", "carol"):
        seen = cli(who, "--json", "poll", "show", "ops", anon).json()
        assert counts(seen) == [2, 0] and seen["voters"] == 2, who
        assert all("voters" not in o for o in seen["options"]), who
        assert seen["mine"] == [1], who
    assert "@bob" not in cli("carol", "poll", "show", "ops", anon).out
