"""`tenchat daemon` end to end: every JSON-RPC method, bad input on the socket, the socket's
mode and ownership. A real relay process, real homes made with `tenchat init`, the daemon
as its own process; bob and carol use the CLI directly."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tenchat.client.daemon import OWN_METHODS
from tenchat.client.rpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    MAX_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    TENCHAT_ERROR,
)
from tenchat.client.rpc_methods import METHODS
from tenchat.common.errors import ErrorCode
from tests.conftest import Cli
from tests.support.relay import RelayProcess
from tests.support.rpc import RpcClient, RpcFailure, start_daemon, stop_daemon

pytestmark = pytest.mark.slow


class World:
    def __init__(self, cli: Cli, daemon: subprocess.Popen[bytes]) -> None:
        self.cli = cli
        self.daemon = daemon
        self.called: set[str] = set()

    @property
    def home(self) -> Path:
        return self.cli.home("alice")

    def rpc(self) -> RpcClient:
        return Tracked(self.home, self.called)


class Tracked(RpcClient):
    def __init__(self, home: Path, called: set[str]) -> None:
        super().__init__(home)
        self.called = called

    def call(self, method: str, **params: Any) -> Any:
        self.called.add(method)
        return super().call(method, **params)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("daemon")
    relay = RelayProcess(base / "relay").start()
    cli = Cli(base, relay)
    for who in ("alice", "bob", "carol"):
        cli(who, "init", "--handle", who)
    daemon = start_daemon(cli.home("alice"), cli.env(), base / "daemon.log")
    w = World(cli, daemon)
    try:
        yield w
        covered = set(METHODS) | set(OWN_METHODS)
        assert w.called >= covered, f"methods never called: {sorted(covered - w.called)}"
    finally:
        stop_daemon(daemon)
        relay.terminate()


def until(check: Callable[[], bool], timeout: float = 30) -> None:
    """Until ``check()`` (each try is a round trip to the daemon, which receives meanwhile)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def no_passphrase(cli: Cli) -> dict[str, str]:
    """The environment of a script that has no passphrase: only the daemon can serve it."""
    env = cli.env()
    del env["TENCHAT_PASSPHRASE"]
    return env


def test_messages_contacts_and_events(world: World) -> None:
    cli = world.cli
    with world.rpc() as rpc:
        assert rpc.call("whoami")["handle"] == "alice"
        assert rpc.call("subscribe", events=["message", "status"]) == {
            "events": ["message", "status"]}
        sent = rpc.call("send", to="bob", text="hello from the daemon")
        assert sent["status"] == "sent" and sent["to"] == "bob"
        assert [m["text"] for m in cli("bob", "--json", "inbox").json_lines()] == [
            "hello from the daemon"]
        event = rpc.next_notification("event", match=lambda p: p["type"] == "message")
        assert event["id"] == sent["id"] and event["incoming"] is False

        cli("bob", "send", "alice", "hi alice")
        got = rpc.next_notification("event", match=lambda p: p["type"] == "message"
                                    and p["incoming"])
        assert got["text"] == "hi alice" and got["from"] == "bob"
        assert [m["text"] for m in rpc.call("receive")] == ["hi alice"]
        assert rpc.call("receive") == []  # shown once

        history = rpc.call("history", conversation="bob", limit=10)
        assert [m["text"] for m in history] == ["hello from the daemon", "hi alice"]
        assert rpc.call("read", conversation="bob")["marked_read"] == 1

        assert rpc.call("react", conversation="bob", id=got["id"], emoji="👍")["done"] == \
            "reacted"
        assert rpc.call("edit", conversation="bob", id=sent["id"],
                        text="hello, edited")["done"] == "edited"
        extra = rpc.call("send", to="bob", text="to be deleted")
        assert rpc.call("delete", conversation="bob", id=extra["id"])["done"] == "deleted"
        rows = {m["id"]: m for m in rpc.call("history", conversation="bob", offline=True)}
        assert rows[got["id"]]["reactions"] == {"👍": 1}
        assert rows[sent["id"]]["text"] == "hello, edited" and rows[sent["id"]]["edited"]
        assert rows[extra["id"]]["deleted"]
        assert rpc.call("unsubscribe") == {"stopped": True}
        assert rpc.call("unsubscribe") == {"stopped": False}

        assert rpc.call("contacts.add", peer="carol")["handle"] == "carol"
        assert {c["handle"] for c in rpc.call("contacts.list")} == {"bob", "carol"}
        assert rpc.call("contacts.block", peer="carol")["blocked"] is True
        with pytest.raises(RpcFailure) as blocked:
            rpc.call("send", to="carol", text="x")
        assert blocked.value.code == TENCHAT_ERROR and "blocked" in blocked.value.error[
            "message"]
        assert rpc.call("contacts.unblock", peer="carol")["blocked"] is False
        assert rpc.call("settings.get")["read_receipts"] in (True, False)


def test_following_receive_streams_messages(world: World) -> None:
    with world.rpc() as rpc:
        rpc.next_id += 1
        rpc.send_raw(json.dumps({"jsonrpc": "2.0", "id": "follow", "method": "receive",
                                 "params": {"follow": True}}).encode() + b"\n")
        world.called.add("receive")
        world.cli("carol", "send", "alice", "streamed to a follower")
        msg = rpc.next_notification("message")
        assert msg["text"] == "streamed to a follower" and msg["from"] == "carol"


def test_groups_polls_stories_posts_wallet(world: World) -> None:
    cli = world.cli
    with world.rpc() as rpc:
        team = rpc.call("groups.create", name="team", members=["bob"])
        assert team["name"] == "team" and team["my_role"] == "owner"
        assert {m["handle"] for m in rpc.call("groups.add", group="team",
                                              members=["carol"])["members"]} == {
            "alice", "bob", "carol"}
        assert [g["name"] for g in rpc.call("groups.list")] == ["team"]
        assert rpc.call("groups.info", group="team")["version"] >= 2
        posted = rpc.call("send", group="team", text="hello team")
        assert posted["status"] == "sent"
        assert "hello team" in cli("bob", "inbox").out

        poll = rpc.call("polls.create", conversation="bob", question="lunch?",
                        options=["pizza", "soup"])
        voted = rpc.call("polls.vote", conversation="bob", poll=poll["id"], choices=[2])
        assert voted["mine"] == [2]
        assert rpc.call("polls.show", conversation="bob", poll=poll["id"])["options"][1][
            "count"] == 1

        story = rpc.call("stories.post", text="a text story")
        assert any(s["id"] == story["id"] for s in rpc.call("stories.list"))
        post = rpc.call("posts.create", text="a public post")
        assert [p["id"] for p in rpc.call("posts.feed", limit=5)] == [post["id"]]

        assert rpc.call("wallet.list") == []
        assert rpc.call("wallet.balances", cached=True) == []

        cli("bob", "group", "create", "bobs", "alice")
        until(lambda: "bobs" in [g["name"] for g in rpc.call("groups.list")])
        assert rpc.call("groups.leave", group="bobs") == {"group": "bobs", "left": True}


def test_cli_method_and_the_cli_through_the_daemon(world: World, tmp_path: Path) -> None:
    cli = world.cli
    env = no_passphrase(cli)  # no passphrase anywhere: only the daemon can do this
    with world.rpc() as rpc:
        assert rpc.call("cli", argv=["whoami"], cwd=str(tmp_path)) == {"exit": 0}
        out = rpc.next_notification("cli.output")
        assert out["stream"] == "stdout" and out["text"].startswith("@alice")

    sent = cli("alice", "--json", "send", "bob", "-", stdin="from stdin\n", env=env).json()
    assert sent["status"] == "sent"
    (tmp_path / "note.txt").write_text("a file beside the caller")
    subprocess.run([sys.executable, "-m", "tenchat.client", "--home", str(world.home),
                    "send", "bob", "--attach", "note.txt"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=60)
    inbox = cli("bob", "--json", "inbox").json_lines()
    assert "from stdin" in [m["text"] for m in inbox]
    assert [m["attachment"]["name"] for m in inbox if "attachment" in m] == ["note.txt"]

    # download with no -o writes into the caller's directory, not the daemon's
    mine = cli("alice", "--json", "history", "bob", "--offline", env=env).json_lines()[-1]
    where = tmp_path / "out"
    where.mkdir()
    saved = subprocess.run([sys.executable, "-m", "tenchat.client", "--home",
                            str(world.home), "--json", "download", mine["id"]],
                           cwd=where, env=env, capture_output=True, text=True, timeout=60)
    assert saved.returncode == 0, saved.stderr
    assert (where / "note.txt").read_text() == "a file beside the caller"

    failed = cli("alice", "send", "nobody-here", "x", env=env, check=False)
    assert failed.code == 1 and failed.err.startswith("error: ") and failed.out == ""
    assert failed.err.count("\n") == 1 and "Traceback" not in failed.err
    usage = cli("alice", "send", "bob", env=env, check=False)
    assert usage.code == 2 and "nothing to send" in usage.err


def test_bad_input_gets_errors_and_the_connection_keeps_serving(world: World) -> None:
    with world.rpc() as rpc:
        rpc.send_raw(b"this is not json\n")
        assert rpc.read()["error"]["code"] == PARSE_ERROR
        rpc.send_raw(b'{"jsonrpc": "2.0", "id": 1, "method": "whoami"\n')  # cut short
        assert rpc.read()["error"]["code"] == PARSE_ERROR
        rpc.send_raw(b"\xff\xfe\n")
        assert rpc.read()["error"]["code"] == PARSE_ERROR
        rpc.send_raw(b'[1, {"jsonrpc": "1.0", "id": 7, "method": "whoami"}]\n')
        batch = rpc.read()
        assert [a["error"]["code"] for a in batch] == [INVALID_REQUEST, INVALID_REQUEST]
        rpc.send_raw(b"[]\n")
        assert rpc.read()["error"]["code"] == INVALID_REQUEST
        rpc.send_raw(b'"just a string"\n')
        assert rpc.read()["error"]["code"] == INVALID_REQUEST
        rpc.send_raw(b"x" * (MAX_REQUEST + 10) + b"\n")
        assert rpc.read()["error"]["code"] == INVALID_REQUEST
        rpc.send_raw(b'{"jsonrpc": "2.0", "method": "no.such"}\n')  # a notification: silent

        def code_of(method: str, **params: Any) -> tuple[int, Any]:
            with pytest.raises(RpcFailure) as failure:
                rpc.call(method, **params)
            return failure.value.code, failure.value.data

        assert code_of("no.such")[0] == METHOD_NOT_FOUND
        assert code_of("send", to="bob")[0] == INVALID_PARAMS  # no text
        assert code_of("send", text="x")[0] == INVALID_PARAMS  # no recipient
        assert code_of("history", conversation=3)[0] == INVALID_PARAMS
        assert code_of("history", conversation="bob", limit="ten")[0] == INVALID_PARAMS
        assert code_of("history", conversation="bob", limit=0)[0] == INVALID_PARAMS
        assert code_of("subscribe", events=["no-such-event"])[0] == INVALID_PARAMS
        assert code_of("cli", argv="whoami")[0] == INVALID_PARAMS
        assert code_of("cli", argv=["whoami"], cwd="relative")[0] == INVALID_PARAMS
        for local in ([], ["chat"], ["init", "--handle", "x"], ["daemon"], ["gift", "bob"]):
            assert code_of("cli", argv=local)[0] == INVALID_PARAMS  # never inside the daemon
        rpc.send_raw(b'{"jsonrpc": "2.0", "id": 9, "method": "whoami", "params": [1]}\n')
        assert rpc.read()["error"]["code"] == INVALID_PARAMS
        # the relay's own error codes come through as data.code
        code, data = code_of("contacts.add", peer="x" * 40)
        assert code == TENCHAT_ERROR and data["code"] in set(ErrorCode), data
        # a flood of requests in one write: all answered (64 at a time), none lost
        rpc.send_raw(b"".join(b'{"jsonrpc": "2.0", "id": %d, "method": "settings.get"}\n'
                              % (1000 + i) for i in range(200)))
        answers = [rpc.read() for _ in range(200)]
        assert sorted(a["id"] for a in answers) == list(range(1000, 1200))
        assert all("read_receipts" in a["result"] for a in answers)
        # after all that, the same connection still serves
        assert rpc.call("whoami")["handle"] == "alice"


def test_socket_is_private_and_the_home_has_one_owner(world: World) -> None:
    sock = world.home / "rpc.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    second = subprocess.run([sys.executable, "-m", "tenchat.client", "--home",
                             str(world.home), "daemon"], env=world.cli.env(),
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1 and "already serves" in second.stderr
    assert world.daemon.poll() is None
    if os.getuid() == 0:
        other_user_is_refused(sock)


PROBE = """
import os, socket, sys
os.setuid(65534)
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "whoami"}\\n')
    print(repr(s.recv(65536)))
except (BrokenPipeError, ConnectionResetError):  # closed before the request was read
    print(repr(b""))
"""


def other_user_is_refused(sock: Path) -> None:
    """As another user (root can become one): the socket's mode refuses the connection,
    and with the mode opened up, the daemon's peer check closes it unanswered. The probe
    reaches the socket through a hard link in a folder anyone may enter (the home's
    folders are private, which alone would refuse it)."""
    shared = Path(tempfile.mkdtemp())
    shared.chmod(0o755)
    link = shared / "rpc.sock"
    os.link(sock, link)
    try:
        denied = subprocess.run([sys.executable, "-c", PROBE, str(link)],
                                capture_output=True, text=True, timeout=30)
        assert denied.returncode != 0 and "PermissionError" in denied.stderr
        sock.chmod(0o666)
        closed = subprocess.run([sys.executable, "-c", PROBE, str(link)],
                                capture_output=True, text=True, timeout=30)
        assert closed.returncode == 0, closed.stderr
        assert closed.stdout.strip() == "b''"  # closed without an answer
    finally:
        sock.chmod(0o600)
        link.unlink()
        shared.rmdir()


HEAVY = ("nacl", "textual", "web3", "aiosqlite", "typer", "asyncio", "websockets", "msgspec")


def test_the_fast_path_imports_nothing_heavy(world: World) -> None:
    """Through the daemon, `tenchat` imports only the standard library (python -X
    importtime lists every module a process imported)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tenchat.client",
                           "--home", str(world.home), "--json", "send", "bob", "light"],
                          env=no_passphrase(world.cli), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["status"] == "sent"
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "tenchat.client.launch" in imported
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == []
