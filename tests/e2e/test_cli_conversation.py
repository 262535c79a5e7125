"""Two identities with separate homes talk through a real relay process, by script."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import Cli, read_lines
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


def test_offline_recipient_then_receipts(cli: Cli) -> None:
    alice = cli("alice", "--json", "init", "--handle", "alice").json()
    bob = cli("bob", "--json", "init", "--handle", "Bob").json()
    assert bob["handle"] == "bob" and len(bob["user_id"]) == 64 and bob["fingerprint"]
    assert cli("alice", "--json", "whoami").json() == alice | {"relay": alice["relay"]}

    # bob is offline: nothing of his runs while alice sends.
    sent = cli("alice", "--json", "send", "@BOB", "meet at the usual place at 7").json()
    assert sent["to"] == "bob" and sent["status"] == "sent" and len(sent["id"]) == 32
    sent2 = cli("alice", "--json", "send", "bob", "-", stdin="bring the map\n").json()

    got = cli("bob", "--json", "inbox").json_lines()
    assert [(m["id"], m["from"], m["text"]) for m in got] == [
        (sent["id"], "alice", "meet at the usual place at 7"),
        (sent2["id"], "alice", "bring the map"),
    ]
    assert all(isinstance(m["sent_at"], int) for m in got)
    assert cli("bob", "--json", "inbox").json_lines() == []  # nothing twice

    hist = cli("alice", "--json", "history", "bob").json_lines()
    assert [(m["id"], m["status"]) for m in hist] == [
        (sent["id"], "delivered"), (sent2["id"], "delivered")]

    assert "marked 2 messages read" in cli("bob", "read", "alice").out
    hist = cli("alice", "--json", "history", "bob").json_lines()
    assert [m["status"] for m in hist] == ["read", "read"]
    assert [m["from"] for m in hist] == ["alice", "alice"]

    # bob's own history: alice's messages, no status on messages that aren't his.
    bob_hist = cli("bob", "--json", "history", "alice", "--offline").json_lines()
    assert [m["text"] for m in bob_hist] == ["meet at the usual place at 7", "bring the map"]
    assert all("status" not in m for m in bob_hist)

    # and back the other way, on the session bob answered
    cli("bob", "send", "alice", "on my way")
    line = cli("alice", "inbox").out
    assert "@bob: on my way" in line

    human = cli("alice", "history", "bob", "-n", "2").out.splitlines()
    assert len(human) == 2 and human[0].endswith("bring the map  ✓✓ read")


def test_relay_database_holds_no_plaintext(cli: Cli, relay: RelayProcess) -> None:
    secrets = ["the eagle lands at midnight", "zyzzyva-quux-4711", "ünïcödé secret ✓"]
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    for text in secrets:
        cli("alice", "send", "bob", text)
    cli("bob", "send", "alice", secrets[0] + " reply")
    # Read the relay's files while the messages sit in the queues, and again after.
    for stage in ("queued", "delivered"):
        blobs = b"".join(p.read_bytes() for p in relay.data_dir.rglob("*") if p.is_file())
        assert blobs, "the relay wrote nothing?"
        for text in secrets:
            assert text.encode() not in blobs, (stage, text)
            assert text.encode("utf-16-le") not in blobs
        if stage == "queued":
            cli("bob", "inbox")
            cli("alice", "inbox")
    relay.terminate()  # checkpoint the WAL into the main file, then look once more
    blobs = b"".join(p.read_bytes() for p in relay.data_dir.rglob("*") if p.is_file())
    for text in secrets:
        assert text.encode() not in blobs


def test_inbox_follow_prints_live_messages(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    follower = cli.popen("bob", "--json", "inbox", "--follow")
    try:
        assert follower.stdout is not None
        # No fixed sleep for the follower to connect: the first message reaches it either
        # way (queued or live); once it is printed the follower is subscribed, so the
        # second one is live.
        cli("alice", "send", "bob", "first one")
        (line,) = read_lines(follower.stdout, 1, 30)
        assert '"text": "first one"' in line
        cli("alice", "send", "bob", "live one")
        (line,) = read_lines(follower.stdout, 1, 30)
        assert '"text": "live one"' in line and '"from": "alice"' in line
        # The follower sends the delivery receipt after printing: wait for it to reach
        # alice (the flake was asserting this the moment the line was read).
        deadline = time.monotonic() + 30
        while True:
            hist = cli("alice", "--json", "history", "bob").json_lines()
            if hist[-1]["status"] == "delivered" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [m["status"] for m in hist] == ["delivered", "delivered"]
    finally:
        follower.terminate()
        follower.wait(10)


def test_contacts_block_verify(cli: Cli) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    cli("carol", "init", "--handle", "carol")
    added = cli("alice", "--json", "contacts", "add", "@bob").json()
    assert added["handle"] == "bob" and added["added"] is True
    listed = cli("alice", "--json", "contacts", "list").json_lines()
    assert [c["handle"] for c in listed] == ["bob"]

    a_num = cli("alice", "--json", "contacts", "verify", "bob").json()["safety_number"]
    b_num = cli("bob", "--json", "contacts", "verify", "alice").json()["safety_number"]
    c_num = cli("carol", "--json", "contacts", "verify", "alice").json()["safety_number"]
    assert a_num == b_num != c_num
    assert len(a_num.replace(" ", "")) == 60

    # blocked: bob's messages are dropped by alice, and alice can't send to bob
    assert cli("alice", "--json", "contacts", "block", "bob").json()["blocked"] is True
    cli("bob", "send", "alice", "you won't see this")
    cli("carol", "send", "alice", "but this one")
    got = cli("alice", "--json", "inbox").json_lines()
    assert [(m["from"], m["text"]) for m in got] == [("carol", "but this one")]
    res = cli("alice", "send", "bob", "hello?", check=False)
    assert res.code == 1 and res.err.startswith("error: ") and "blocked" in res.err

    cli("alice", "contacts", "unblock", "bob")
    cli("bob", "send", "alice", "after unblock")
    got = cli("alice", "--json", "inbox").json_lines()
    assert [m["text"] for m in got] == ["after unblock"]


def assert_one_line_error(res, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert res.code == 1, (res.code, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.err
    assert "Traceback" not in res.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_failures_are_one_line(cli: Cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("nobody", "whoami", check=False), "no identity")
    assert_one_line_error(cli("nobody", "send", "bob", "x", check=False), "no identity")
    cli("alice", "init", "--handle", "alice")
    assert_one_line_error(cli("bob", "init", "--handle", "ALICE", check=False), "handle_taken")
    assert_one_line_error(cli("bob", "init", "--handle", "x!", check=False), "invalid handle")
    assert_one_line_error(cli("alice", "send", "ghost", "boo", check=False), "no user @ghost")
    assert_one_line_error(cli("alice", "send", "bob", "   ", check=False), "empty")
    wrong = cli.env(TENCHAT_PASSPHRASE="not it")
    assert_one_line_error(cli("alice", "whoami", env=wrong, check=False), "wrong passphrase")
    dead = cli.env(TENCHAT_RELAY="ws://127.0.0.1:9")
    assert_one_line_error(cli("alice", "send", "bob", "x", env=dead, check=False),
                          "cannot reach relay")
    assert_one_line_error(cli("carol", "init", "--handle", "carol", env=dead, check=False),
                          "cannot reach relay")
    assert not cli.home("carol").joinpath("keystore.msgpack").exists()  # nothing half-made
    no_pass = {k: v for k, v in cli.env().items() if k != "TENCHAT_PASSPHRASE"}
    assert_one_line_error(cli("alice", "whoami", env=no_pass, check=False), "passphrase")
    passfile = tmp_path / "pass"
    passfile.write_text("correct horse battery staple\n")
    ok = cli("alice", "--passphrase-file", str(passfile), "whoami", env=no_pass)
    assert "@alice" in ok.out
    # usage errors exit 2
    assert cli("alice", "send", check=False).code == 2
    assert cli("alice", "history", "bob", "-n", "0", check=False).code == 2
    assert cli("alice", "frobnicate", check=False).code == 2


def test_demo_talks_to_the_echo_bot(tmp_path: Path) -> None:
    """README's first command ends in `tenchat demo`: a relay and a working conversation."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "tenchat.client", "demo", "--lines", "--dir",
         str(tmp_path / "try")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write("ping from a newcomer\n")
        proc.stdin.flush()
        seen = "\n".join(read_lines(proc.stdout, 100, 30,
                                     until="@echo: echo: ping from a newcomer\n"))
        assert "@echo: echo: ping from a newcomer" in seen, seen
        proc.stdin.close()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_relay_restart_follow_reconnects_and_offline_send_is_kept(cli: Cli,
                                                                  relay: RelayProcess) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    cli("alice", "send", "bob", "before the outage")
    follower = cli.popen("bob", "--json", "inbox", "--follow")
    assert follower.stdout is not None
    try:
        assert "before the outage" in read_lines(follower.stdout, 1, 15)[0]

        relay.terminate()
        # alice writes while the relay is down: refused, but kept in her outbox
        res = cli("alice", "send", "bob", "during the outage", check=False)
        assert res.code == 1 and "queued as pending" in res.err
        assert len(res.err.strip().splitlines()) == 1
        hist = cli("alice", "--json", "history", "bob").json_lines()
        assert [(m["text"], m["status"]) for m in hist][-1] == ("during the outage", "pending")

        relay.start()
        cli("alice", "send", "bob", "after the outage")  # flushes the queued one first
        got = read_lines(follower.stdout, 2, 20)
        log = (cli.base / "bob.log").read_text()
        assert follower.poll() is None, f"inbox --follow exited: {log}"
        assert len(got) == 2, log + "\nRELAY:\n" + relay.log_tail(4000)
        assert "during the outage" in got[0] and "after the outage" in got[1], got
    finally:
        follower.terminate()
        follower.wait(10)
