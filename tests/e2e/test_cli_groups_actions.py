"""The scripted CLI for groups, message actions and settings, through a real relay."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.slow


def test_group_commands(cli: Cli) -> None:
    for name in ("alice", "bob", "carol"):
        cli(name, "init", "--handle", name)
    made = cli("alice", "--json", "group", "create", "Ops", "bob").json()
    assert made["name"] == "Ops" and made["my_role"] == "owner"
    assert {m["handle"]: m["role"] for m in made["members"]} == {"alice": "owner",
                                                                 "bob": "member"}
    cli("alice", "group", "add", "ops", "@carol")
    sent = cli("alice", "--json", "group", "send", "ops", "standup in 5").json()
    assert sent["status"] == "sent"
    # bob has never synced: the group is found by name all the same
    cli("bob", "group", "send", "ops", "bob checks in")
    got = cli("carol", "--json", "inbox").json_lines()
    assert [(m["from"], m["group"], m["text"]) for m in got] == [
        ("alice", "Ops", "standup in 5"), ("bob", "Ops", "bob checks in")]
    assert cli("bob", "--json", "group", "list").json_lines()[0]["name"] == "Ops"

    res = cli("bob", "group", "add", "ops", "carol", check=False)
    assert res.code == 1 and res.err.startswith("error: ") and "admins" in res.err
    cli("alice", "group", "promote", "ops", "bob")
    info = cli("carol", "--json", "group", "info", "ops").json()
    assert {m["handle"]: m["role"] for m in info["members"]}["bob"] == "admin"

    cli("bob", "group", "remove", "ops", "carol")
    cli("alice", "group", "send", "ops", "carol is gone")
    assert "carol is gone" not in cli("carol", "inbox").out
    res = cli("carol", "group", "send", "ops", "hello?", check=False)
    assert res.code == 1 and "member" in res.err
    texts = [m["text"] for m in cli("bob", "--json", "history", "ops").json_lines()]
    assert texts == ["standup in 5", "bob checks in", "carol is gone"]


def test_reply_react_edit_delete_timer(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    first = cli("alice", "--json", "send", "bob", "lunch at 12?").json()["id"]
    second = cli("alice", "--json", "send", "bob", "typo hree").json()["id"]
    third = cli("alice", "--json", "send", "bob", "ignore this").json()["id"]
    cli("bob", "inbox")
    reply = cli("bob", "--json", "send", "alice", "yes!", "--reply-to", first[:8]).json()["id"]
    cli("bob", "react", "alice", first, "👍")
    cli("alice", "edit", "bob", second, "typo here")
    cli("alice", "delete", "bob", third)

    seen = {m["id"]: m for m in cli("bob", "--json", "history", "alice").json_lines()}
    assert seen[second]["text"] == "typo here" and seen[second]["edited"] is True
    assert seen[third]["deleted"] is True and seen[third]["text"] == ""
    assert seen[first]["reactions"] == {"👍": 1}
    mine = {m["id"]: m for m in cli("alice", "--json", "history", "bob").json_lines()}
    assert mine[reply]["reply_to"] == first and mine[first]["reactions"] == {"👍": 1}

    # only the author may edit or delete
    res = cli("bob", "edit", "alice", first, "hijacked", check=False)
    assert res.code == 1 and "your own" in res.err

    # disappearing messages: set by either side, applied on both
    # (8 s: long enough for the CLI round trips on a loaded machine, where a shorter
    # timer let the relay drop the message before bob's inbox asked for it.)
    cli("bob", "timer", "alice", "8")
    cli("alice", "inbox")
    vanish = cli("alice", "--json", "send", "bob", "this will vanish").json()
    assert vanish["status"] == "sent"
    got = cli("bob", "--json", "inbox").json_lines()
    assert got[0]["text"] == "this will vanish" and got[0]["expires_at"] > 0
    last = got[0]["expires_at"] / 1000  # bob's copy; alice's went earlier (sent first)
    time.sleep(max(0.0, last - time.time()) + 0.5)
    for who, peer in (("alice", "bob"), ("bob", "alice")):
        texts = [m["text"] for m in cli(who, "--json", "history", peer).json_lines()]
        assert "this will vanish" not in texts, who
        assert "lunch at 12?" in texts


def test_settings_commands(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    assert cli("alice", "--json", "settings", "get").json() == {
        "read_receipts": True, "typing": True, "hide_presence": False, "incognito": False,
        "sealed_sender": True, "sealed_from_anyone": False}
    assert cli("alice", "--json", "settings", "set", "read_receipts", "off").json() == {
        "read_receipts": False}
    assert cli("alice", "--json", "settings", "get", "read_receipts").json() == {
        "read_receipts": False}
    res = cli("alice", "settings", "set", "colour", "on", check=False)
    assert res.code == 1 and "unknown setting" in res.err
    res = cli("alice", "settings", "set", "typing", "maybe", check=False)
    assert res.code == 1 and "on or off" in res.err


def test_group_picture_set_download_remove(cli: Cli, tmp_path: Path) -> None:
    from PIL import Image

    for name in ("alice", "bob", "carol"):
        cli(name, "init", "--handle", name)
    cli("alice", "group", "create", "Team", "bob", "carol")
    picture = tmp_path / "team.png"
    Image.new("RGB", (1000, 600), (200, 40, 90)).save(picture)

    shown = cli("alice", "--json", "group", "avatar", "Team", str(picture)).json()
    assert shown["avatar"]["mime"] == "image/png"
    info = cli("bob", "--json", "group", "info", "Team").json()
    assert info["avatar"] == shown["avatar"]  # bob's client read it from the signed chain
    out = tmp_path / "got.png"
    saved = cli("bob", "--json", "group", "avatar", "Team", "--save", str(out)).json()
    assert saved["size"] == out.stat().st_size == info["avatar"]["size"]
    with Image.open(out) as im:
        assert im.size == (512, 307) and im.getpixel((10, 10)) == (200, 40, 90)

    # A plain member may not change it; nor is a non-image accepted.
    res = cli("carol", "group", "avatar", "Team", str(picture), check=False)
    assert res.code == 1 and res.err.startswith("error:") and "admin" in res.err
    assert len(res.err.strip().splitlines()) == 1
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    res = cli("alice", "group", "avatar", "Team", str(text), check=False)
    assert res.code == 1 and res.err.startswith("error:") and "not an image" in res.err

    cli("alice", "group", "avatar", "Team", "--remove")
    assert cli("bob", "--json", "group", "info", "Team").json()["avatar"] is None
    res = cli("bob", "group", "avatar", "Team", "--save", str(tmp_path / "none.png"),
              check=False)
    assert res.code == 1 and "no picture" in res.err
