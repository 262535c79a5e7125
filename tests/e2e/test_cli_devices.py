"""`tenchat device …` as a user runs it: link a new home to an account with a one-time
code, approve it from the first device, then both devices get and send messages."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Cli, read_lines

pytestmark = pytest.mark.slow


def test_link_approve_list_remove(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    link = cli.popen("laptop", "--json", "device", "link", "--name", "laptop",
                     "--timeout", "60")
    try:
        assert link.stdout is not None
        first = json.loads(read_lines(link.stdout, 1, 30)[0])
        code = first["code"]
        assert code.startswith("tcl1-") and len(code) == 69
        # no terminal to ask in, no --yes: refused, and the code is not touched
        wrong = cli("alice", "device", "approve", "tcl1-" + "A" * 64, check=False)
        assert wrong.code == 1 and "no device is waiting" in wrong.err
        approved = cli("alice", "--json", "device", "approve", code, "--yes")
        assert first["fingerprint"] in approved.err  # shown before approving
        assert approved.json()["approved"] == "laptop"
        done = json.loads(read_lines(link.stdout, 1, 30)[0])
        assert link.wait(timeout=30) == 0
    finally:
        if link.poll() is None:
            link.kill()
    alice = cli("alice", "--json", "whoami").json()
    assert done["user_id"] == alice["user_id"] and done["handle"] == "alice"
    assert done["device"] != alice["device"]
    devices = cli("laptop", "--json", "device", "list").json_lines()
    assert [(d["name"], d["this"]) for d in devices] == [("first", False), ("laptop", True)]

    cli("bob", "send", "alice", "hi, both of you")
    theirs = cli("bob", "--json", "device", "list", "--of", "alice")
    assert [d["name"] for d in theirs.json_lines()] == ["first", "laptop"]
    for home in ("alice", "laptop"):
        assert [m["text"] for m in cli(home, "--json", "inbox").json_lines()] == [
            "hi, both of you"]
    cli("laptop", "send", "bob", "from the laptop")
    assert [m["text"] for m in cli("bob", "--json", "inbox").json_lines()] == [
        "from the laptop"]
    cli("alice", "--json", "inbox")
    mine = cli("alice", "--json", "history", "bob").json_lines()
    assert [(m["text"], m["from"], "status" in m) for m in mine] == [
        ("hi, both of you", "bob", False), ("from the laptop", "alice", True)]

    assert cli("alice", "--json", "device", "remove", "laptop").json()["removed"] == "laptop"
    assert [d["name"] for d in cli("alice", "--json", "device", "list").json_lines()] == [
        "first"]
    bad = cli("alice", "device", "remove", "first", check=False)
    assert bad.code == 1 and bad.err.startswith("error: this is the device you are on")
