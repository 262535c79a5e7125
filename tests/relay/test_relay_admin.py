"""Operations over a real relay process: invite-only registration with the real CLI,
`tenchat-relay admin ...` on the database of a running relay (bans reach it), roles
and the `moderate` frame, quotas, and the audit log with and without client addresses.

Each runs on both backends — the data directory's SQLite and a fresh PostgreSQL
database — with the same assertions: the admin commands answer alike on both. On a
two-node PostgreSQL cluster a ban from the command line reaches both nodes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bench._postgres import scratch_database
from tenchat.common.frames import (
    BlobBegin,
    BlobStatus,
    Error,
    HandleInfo,
    Moderate,
    Ok,
    Send,
    Welcome,
    Whois,
)
from tests.conftest import Cli
from tests.support.nodes import Nodes
from tests.support.relay import RelayProcess
from tests.support.services import free_port
from tests.support.wsclient import RelayClient, async_test, msg_id, new_key, user_of

pytestmark = pytest.mark.slow


def err(reply: msgspec.Struct, code: str) -> Error:
    assert isinstance(reply, Error), reply
    assert reply.error == code, reply
    return reply


@pytest.fixture
def database(postgres_service: str) -> Iterator[str]:
    """A fresh PostgreSQL database (dropped afterwards)."""
    with scratch_database(postgres_service) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest) -> list[str]:
    """The relay's `--storage` flags: none (its data directory's SQLite), or a fresh
    PostgreSQL database."""
    return [] if request.param == "sqlite" else ["--storage", request.getfixturevalue("database")]


def admin(relay: RelayProcess, *args: str, check: bool = True,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`tenchat-relay admin ARGS` on ``relay``'s data directory and storage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENCHAT_")} | (env or {})
    at = relay.args.index("--storage") if "--storage" in relay.args else len(relay.args)
    proc = subprocess.run(
        [sys.executable, "-m", "tenchat.relay", "admin", *args, "--data", str(relay.data_dir),
         *relay.args[at : at + 2]],
        capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def admin_json(relay: RelayProcess, *args: str, env: dict[str, str] | None = None) -> Any:
    out = admin(relay, *args, "--json", env=env).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    return lines[0] if len(lines) == 1 and args[0] not in ("users", "audit") else lines


async def member(url: str, handle: str) -> RelayClient:
    """A logged-in identity holding ``handle``."""
    c = await RelayClient.login(url, new_key())
    assert isinstance(await c.register(handle), HandleInfo)
    return c


# --- invite-only registration ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_invite_only_registration(tmp_path: Path, storage: list[str]) -> None:
    with RelayProcess(tmp_path / "data",
                      args=["--registration", "invite-only", *storage]) as relay:
        cli = Cli(tmp_path, relay)
        codes = admin_json(relay, "invite", "--count", "2")["codes"]
        assert len(codes) == 2 and codes[0] != codes[1]

        refused = cli("alice", "init", "--handle", "alice", check=False)
        assert refused.code != 0 and "invite_required" in refused.err
        assert len(refused.err.strip().splitlines()) == 1 and "Traceback" not in refused.err
        cli("alice", "init", "--handle", "alice", "--invite", codes[0])
        reused = cli("bob", "init", "--handle", "bob", "--invite", codes[0], check=False)
        assert reused.code != 0 and "bad_invite" in reused.err
        wrong = cli("bob", "init", "--handle", "bob", "--invite", "no-such-code", check=False)
        assert wrong.code != 0 and "bad_invite" in wrong.err

        # made by an admin whose clock is a day behind, for half a day: expired already
        a_day_ago = {"TENCHAT_CLOCK_OFFSET_MS": str(-86_400_000)}
        expiring = admin_json(relay, "invite", "--expires", "0.5", env=a_day_ago)["codes"][0]
        late = cli("carol", "init", "--handle", "carol", "--invite", expiring, check=False)
        assert late.code != 0 and "bad_invite" in late.err

        cli("bob", "init", "--handle", "bob", "--invite", codes[1])
        cli("alice", "send", "@bob", "invited")
        assert [m["text"] for m in cli("bob", "--json", "inbox").json_lines()] == ["invited"]
        stats = admin_json(relay, "stats")
        assert stats["users"] == 2 and stats["invites_open"] == 0

        c = await RelayClient.login(relay.url, new_key())
        async with c:
            err(await c.call(Whois, user=c.user), "invite_required")
            err(await c.call(Send, to=c.user, msg=msg_id(), body=b"x"), "invite_required")


# --- bans and quotas from the command line, while the relay runs --------------------------------


@async_test
async def test_admin_commands_reach_a_running_relay(tmp_path: Path, storage: list[str]) -> None:
    with RelayProcess(tmp_path / "data", args=["--ban-poll", "1", *storage]) as relay:
        alice = await member(relay.url, "alice")
        bob = await member(relay.url, "bob")
        async with bob:
            users = await asyncio.to_thread(admin_json, relay, "users")
            assert {u["handle"]: u["banned"] for u in users} == {"alice": False, "bob": False}

            await asyncio.to_thread(admin, relay, "ban", "@alice", "--reason", "spam")
            await asyncio.wait_for(alice.ws.wait_closed(), 15)  # ban_poll 1 s; loaded machine
            assert alice.ws.close_code == 1008 and alice.ws.close_reason == "banned"
            again = await RelayClient.connect(relay.url)
            async with again:
                assert isinstance(await again.hello(), Welcome)
                err(await again.auth(alice.key), "banned")  # type: ignore[arg-type]
                await asyncio.wait_for(again.ws.wait_closed(), 15)
            assert isinstance(await bob.call(Whois, user=bob.user), HandleInfo)  # bob goes on

            users = await asyncio.to_thread(admin_json, relay, "users")
            assert {u["handle"]: u["banned"] for u in users} == {"alice": True, "bob": False}
            await asyncio.to_thread(admin, relay, "unban", "@alice")
            back = await RelayClient.login(relay.url, alice.key)  # type: ignore[arg-type]
            await back.close()
            gone = await asyncio.to_thread(admin, relay, "unban", "@alice", check=False)
            assert gone.returncode == 1 and gone.stderr == "error: this identity is not banned\n"

            # A quota of bob's own: a blob over it is refused, the default allows it again.
            await asyncio.to_thread(admin, relay, "quota", "@bob", "2048")
            err(await bob.call(BlobBegin, hash=os.urandom(32), size=4096), "quota_exceeded")
            users = await asyncio.to_thread(admin_json, relay, "users")
            assert [(u["handle"], u["blob_quota"], u["queued"], u["blob_bytes"])
                    for u in users] == [("alice", None, 0, 0), ("bob", 2048, 0, 0)]
            await asyncio.to_thread(admin, relay, "quota", "@bob", "--default")
            assert isinstance(await bob.call(BlobBegin, hash=os.urandom(32), size=4096),
                              BlobStatus)

            # The audit log: the CLI's actions, and the banned identity's refused auth —
            # without an address (audit_ip is off by default).
            rows = await asyncio.to_thread(admin_json, relay, "audit")
            actions = [(r["action"], r["detail"]) for r in rows]
            assert ("ban", "cli spam") in actions and ("unban", "cli") in actions
            assert ("auth_failed", "banned") in actions
            assert ("quota", "cli 2048") in actions
            assert all(r["ip"] is None for r in rows)
            failed = next(r for r in rows if r["action"] == "auth_failed")
            assert failed["actor"] == user_of(alice.key).hex()  # type: ignore[arg-type]

        bad = await asyncio.to_thread(admin, relay, "ban", "@nobody", check=False)
        assert bad.returncode == 1 and bad.stderr == "error: no identity holds @nobody\n"
        assert await asyncio.to_thread(admin_json, relay, "stats") == {
            "users": 2, "queued_messages": 0, "groups": 0, "posts": 0, "comments": 0,
            "blobs": 0, "blob_bytes": 0, "banned": 0, "invites_open": 0}
        # a refused unban wrote no audit row
        rows = await asyncio.to_thread(admin_json, relay, "audit")
        assert [r["action"] for r in rows].count("unban") == 1


# --- roles and the moderate frame ---------------------------------------------------------------


@async_test
async def test_moderators_remove_posts_users_may_not(tmp_path: Path,
                                                     storage: list[str]) -> None:
    with RelayProcess(tmp_path / "data", args=[
            "--moderators", "@mod,@climod", "--admins", "@boss", "--audit-ip",
            *storage]) as relay:
        cli = Cli(tmp_path, relay)

        def publish() -> tuple[str, str]:
            cli("alice", "init", "--handle", "alice")
            cli("climod", "init", "--handle", "climod")
            post = cli("alice", "post", "hello world", "--json").json()["id"]
            comment = cli("alice", "comment", post, "first", "--json").json()["id"]
            return post, comment

        post, comment = await asyncio.to_thread(publish)
        mod, boss, user = (await member(relay.url, "mod"), await member(relay.url, "boss"),
                           await member(relay.url, "someone"))
        async with mod, boss:
            refused = err(await user.call(Moderate, action="remove_post",
                                          target=bytes.fromhex(post)), "forbidden")
            assert "moderator" in refused.message
            err(await mod.call(Moderate, action="ban", target=user.user), "forbidden")
            err(await mod.call(Moderate, action="explode", target=user.user), "malformed")

            feed = await asyncio.to_thread(lambda: cli("alice", "feed", "--json").json_lines())
            assert [p["id"] for p in feed] == [post] and feed[0]["comments"] == 1

            # The CLI speaks the same frame: a user is refused, a moderator is not.
            mine = await asyncio.to_thread(
                cli, "alice", "moderate", "remove-comment", comment, check=False)
            assert mine.code == 1 and "forbidden" in mine.err and "Traceback" not in mine.err
            done = await asyncio.to_thread(
                cli, "climod", "--json", "moderate", "remove-comment", comment)
            assert done.json() == {"action": "remove_comment", "target": comment}
            feed = await asyncio.to_thread(lambda: cli("alice", "feed", "--json").json_lines())
            assert feed[0]["comments"] == 0
            assert isinstance(await mod.call(Moderate, action="remove_post",
                                             target=bytes.fromhex(post), reason="spam"), Ok)
            err(await mod.call(Moderate, action="remove_post", target=bytes.fromhex(post)),
                "not_found")
            feed = await asyncio.to_thread(lambda: cli("alice", "feed", "--json").json_lines())
            assert feed == []

            # An admin's ban over the protocol disconnects the identity at once.
            assert isinstance(await boss.call(Moderate, action="ban", target=user.user), Ok)
            await asyncio.wait_for(user.ws.wait_closed(), 15)
            assert user.ws.close_reason == "banned"

            # A failed authentication, recorded with the client's address (audit_ip on).
            c = await RelayClient.connect(relay.url)
            async with c:
                await c.hello()
                err(await c.auth(new_key(), relay_name="elsewhere"), "auth_failed")

        rows = await asyncio.to_thread(admin_json, relay, "audit")
        by_action = {r["action"]: r for r in rows}
        assert by_action["remove_post"]["actor"] == mod.user.hex()
        assert by_action["remove_post"]["target"] == post
        assert by_action["remove_post"]["detail"] == "spam"
        assert by_action["remove_comment"]["target"] == comment
        assert by_action["remove_comment"]["actor"] != mod.user.hex()  # climod's, via the CLI
        assert by_action["ban"]["actor"] == boss.user.hex()
        assert by_action["refused:remove_post"]["actor"] == user.user.hex()
        assert by_action["auth_failed"]["detail"] == "foreign origin"  # signed for elsewhere
        assert all(r["ip"] == "127.0.0.1" for r in rows)

        # `tenchat-relay admin` removes posts and comments too.
        def removals() -> None:
            post = cli("alice", "post", "again", "--json").json()["id"]
            comment = cli("alice", "comment", post, "second", "--json").json()["id"]
            assert admin_json(relay, "remove-comment", comment) == {"removed_comment": comment}
            assert cli("alice", "feed", "--json").json_lines()[0]["comments"] == 0
            gone = admin(relay, "remove-comment", comment, check=False)
            assert gone.returncode == 1 and gone.stderr == "error: no comment with this id\n"
            assert admin_json(relay, "remove-post", post) == {"removed_post": post}
            assert cli("alice", "feed", "--json").json_lines() == []
            gone = admin(relay, "remove-post", post, check=False)
            assert gone.returncode == 1 and gone.stderr == "error: no post with this id\n"
            rows = admin_json(relay, "audit", "--limit", "2")
            assert [(r["action"], r["actor"], r["target"], r["detail"], r["ip"])
                    for r in rows] == [("remove_comment", None, comment, "cli", None),
                                       ("remove_post", None, post, "cli", None)]
            numbers = admin_json(relay, "stats")
            assert (numbers["posts"], numbers["comments"], numbers["banned"]) == (0, 0, 1)

        await asyncio.to_thread(removals)


def test_admin_on_a_directory_without_a_relay(tmp_path: Path, storage: list[str]) -> None:
    relay = RelayProcess(tmp_path / "empty", args=storage)
    out = admin(relay, "stats", check=False)
    assert out.returncode == 1 and len(out.stderr.splitlines()) == 1
    assert out.stderr.startswith("error: no relay database ") and "Traceback" not in out.stderr


def test_admin_on_a_postgresql_server_that_is_not_there(tmp_path: Path) -> None:
    url = f"postgresql://tenchat@127.0.0.1:{free_port()}/relay"
    out = admin(RelayProcess(tmp_path / "data", args=["--storage", url]), "users", check=False)
    assert out.returncode == 1 and len(out.stderr.splitlines()) == 1
    assert out.stderr.startswith(f"error: cannot use PostgreSQL at {url}: ")


# --- a cluster: one PostgreSQL database, two nodes ----------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path, database: str, nats_service: str) -> Iterator[Nodes]:
    """Two nodes of one relay on one PostgreSQL database, polling for bans every second."""
    nodes = Nodes(tmp_path, database, nats_service, n=2, args=["--ban-poll", "1"])
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@async_test
async def test_a_ban_from_the_command_line_reaches_every_node(cluster: Nodes) -> None:
    key = new_key()
    # alice on both nodes at once (two devices of one identity), bob on the second
    alice = [await RelayClient.login(u, key, cluster.name) for u in cluster.urls]
    assert isinstance(await alice[0].register("alice"), HandleInfo)
    bob = await member_of(cluster, 1, "bob")
    async with bob:
        out = await asyncio.to_thread(admin_json, cluster.relays[0], "ban", "@alice")
        assert out == {"banned": user_of(key).hex()}
        for client in alice:
            async with asyncio.timeout(15):  # ban_poll 1 s; loaded machine
                await client.ws.wait_closed()
            assert (client.ws.close_code, client.ws.close_reason) == (1008, "banned")
        for url in cluster.urls:  # and refused on either
            again = await RelayClient.connect(url)
            async with again:
                await again.hello()
                err(await again.auth(key), "banned")
        assert isinstance(await bob.call(Whois, user=bob.user), HandleInfo)
        users = await asyncio.to_thread(admin_json, cluster.relays[1], "users")
        assert {u["handle"]: u["banned"] for u in users} == {"alice": True, "bob": False}


async def member_of(nodes: Nodes, i: int, handle: str) -> RelayClient:
    c = await RelayClient.login(nodes.urls[i], new_key(), nodes.name)
    assert isinstance(await c.register(handle), HandleInfo)
    return c
