"""What a hostile contact or a crash can do to a scripted client (issue 12): peer text
can't command the terminal, `inbox` loses nothing when killed, usage mistakes exit 2."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.slow

HOSTILE = ("hi\r\x1b[K@admin: please send me your key \x1b]0;pwned\x07 \x1b[2J "
           "\x9b31m \u202eexe.txt\u2066")
TERMINAL_COMMANDS = ["\x1b", "\x9b", "\x07", "\r", "\u202e", "\u2066"]


def assert_inert(out: str) -> None:
    for ch in TERMINAL_COMMANDS:
        assert ch not in out, (ch, out)


def test_peer_text_reaches_the_terminal_inert(cli: Cli, tmp_path: Path) -> None:
    cli("mallory", "init", "--handle", "mallory")
    cli("bob", "init", "--handle", "bob")
    cli("mallory", "send", "bob", "-", stdin=HOSTILE)
    evil_file = tmp_path / "report\x1b]0;x\x07\u202efdp.exe"
    evil_file.write_bytes(b"not really a pdf")
    cli("mallory", "send", "bob", "--attach", str(evil_file), "-", stdin="see \x1b[31m this")
    cli("mallory", "group", "create", "evil\x1b[2Jgroup", "bob")
    cli("mallory", "group", "send", "evil\x1b[2Jgroup", "-", stdin="group \x1b[1A text")

    inbox = cli("bob", "inbox").out
    assert "@mallory: hi␍␛[K@admin: please send me your key ␛]0;pwned␇ ␛[2J" in inbox
    assert "\\u202eexe.txt" in inbox and "see ␛[31m this" in inbox
    assert "#evil␛[2Jgroup @mallory: group ␛[1A text" in inbox
    assert_inert(inbox)
    for args in (["history", "mallory"], ["history", "evil\x1b[2Jgroup"], ["group", "list"],
                 ["contacts", "list"]):
        assert_inert(cli("bob", *args).out)

    # --json stays exact: the same text parses back, no raw control in the output.
    raw = cli("bob", "--json", "history", "mallory").out
    assert_inert(raw)
    texts = [m["text"] for m in map(json.loads, raw.splitlines())]
    assert texts[0] == HOSTILE and texts[1] == "see \x1b[31m this"
    att = json.loads(raw.splitlines()[1])["attachment"]
    assert att["name"] == evil_file.name


def test_send_with_nothing_to_send_is_a_usage_error(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    for args in (["send", "bob"], ["send", "bob", ""], ["group", "send", "crew"]):
        res = cli("alice", *args, check=False)
        assert res.code == 2, (args, res)
        assert res.err.strip() == "error: nothing to send: give a message, or a file with --attach"


def test_killed_inbox_loses_no_message(cli: Cli) -> None:
    """`inbox` is SIGKILLed while it prints (its stdout pipe full, so it is blocked in a
    write): a second `inbox` prints everything the first did not finish printing."""
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    sent = [cli("alice", "--json", "send", "bob", "-", stdin=f"message {i} " + "x" * 1500
                ).json()["id"] for i in range(8)]

    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # 12 KB of output fills it 3 times
    capacity = fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tenchat.client", "--home", str(cli.home("bob")), "--json",
         "inbox"], stdout=write_end, stderr=subprocess.DEVNULL, env=cli.env())
    os.close(write_end)
    try:
        # Wait for the event: the pipe is full and bob is blocked writing into it.
        deadline = time.monotonic() + 60
        queued = bytearray(4)
        while time.monotonic() < deadline and proc.poll() is None:
            fcntl.ioctl(read_end, termios.FIONREAD, queued)
            if int.from_bytes(queued, sys.byteorder) >= capacity:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "inbox finished without filling the pipe"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        first = b""
        while chunk := os.read(read_end, 65536):
            first += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(read_end)
    printed = [json.loads(line)["id"] for line in first.decode().splitlines()
               if line.endswith("}")]
    assert 0 < len(printed) < len(sent)

    again = [m["id"] for m in cli("bob", "--json", "inbox").json_lines()]
    # At least once: every message printed by one run or the other, in order; one cut
    # short by the kill (or printed but not yet marked) comes again with the same id.
    assert set(printed) | set(again) == set(sent)
    assert again == sent[len(sent) - len(again):]
    assert cli("bob", "--json", "inbox").json_lines() == []  # and then not again


def test_verified_contact_key_change_holds_sends_until_accepted(cli: Cli, relay) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    cli("bob", "send", "alice", "hello from my old phone")
    cli("alice", "inbox")
    listed = cli("alice", "--json", "contacts", "list").json_lines()
    assert [(c["handle"], c["verified"], c["key_changed"]) for c in listed] == [
        ("bob", False, False)]

    number = cli("alice", "--json", "contacts", "verify", "bob").json()["safety_number"]
    marked = cli("alice", "--json", "contacts", "verify", "bob", "--mark", *number.split()
                 ).json()
    assert marked["verified"] is True and len(marked["safety_number"].split()) == 12
    assert "[verified]" in cli("alice", "contacts", "list").out
    assert cli("alice", "--json", "contacts", "verify", "bob", "--unmark").json()[
        "verified"] is False
    assert "verified" not in cli("alice", "contacts", "list").out
    cli("alice", "contacts", "verify", "bob", "--mark", number[:11])
    assert cli("alice", "contacts", "verify", "bob", "--mark", "--unmark", check=False).code == 2
    assert cli("alice", "contacts", "verify", "bob", "--mark", check=False).code == 2

    # bob loses his phone; the relay's operator frees his handle and he registers it again
    # from a new home, with a new identity key, and writes to alice.
    relay.terminate()
    db = sqlite3.connect(relay.data_dir / "relay.sqlite3")
    db.execute("DELETE FROM handles WHERE handle='bob'")
    db.commit()
    db.close()
    relay.start()
    cli("bob2", "init", "--handle", "bob")
    cli("bob2", "send", "alice", "it's me, new phone")
    # shown as a key change, not as @bob (security review H1): the handle stays pinned
    assert "@bob (NEW KEY): it's me, new phone" in cli("alice", "inbox").out

    (bob,) = [c for c in cli("alice", "--json", "contacts", "list").json_lines()
              if c.get("claims_handle") == "bob"]
    assert bob["key_changed"] is True and bob["needs_acceptance"] is True
    assert bob["verified"] is False and bob["user_id"] != marked["user_id"]
    assert bob["previous_user_id"] == marked["user_id"] and bob["handle"] is None
    res = cli("alice", "send", "bob", "are you really bob?", check=False)
    assert res.code == 1 and res.err.count("\n") == 1, res.err
    assert "identity key changed" in res.err and "tenchat contacts accept-key bob" in res.err
    assert "key changed" in cli("alice", "contacts", "list").out
    # review M4: --mark marks the key whose number was compared; the old number does not
    # mark (or accept) the new key
    res = cli("alice", "contacts", "verify", "bob", "--mark", "00000 00000", check=False)
    assert res.code == 1 and "nothing was marked" in res.err
    shown = cli("alice", "--json", "contacts", "verify", "bob").json()
    assert shown["user_id"] == marked["user_id"] and shown["safety_number"] == number
    new_number = shown["pending_key"]["safety_number"]
    assert new_number != number and shown["pending_key"]["user_id"] == bob["user_id"]
    assert "has a NEW KEY" in cli("alice", "contacts", "verify", "bob").out
    # not even a delivery receipt went to the new key
    assert cli("bob2", "--json", "history", "alice").json_lines()[-1]["status"] == "sent"

    accepted = cli("alice", "--json", "contacts", "accept-key", "bob").json()
    assert accepted["key_changed"] is False and accepted["verified"] is False
    assert accepted["handle"] == "bob" and accepted["user_id"] == bob["user_id"]
    res = cli("alice", "contacts", "verify", "bob", "--mark", number, check=False)
    assert res.code == 1 and "nothing was marked" in res.err  # the old key's number
    assert cli("alice", "--json", "contacts", "verify", "bob", "--mark", new_number
               ).json()["verified"] is True
    cli("alice", "send", "bob", "welcome back")
    assert "@alice: welcome back" in cli("bob2", "inbox").out
    assert cli("alice", "contacts", "accept-key", "bob", check=False).code == 1
