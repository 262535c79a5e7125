"""deploy/cluster/ works as shipped: three relay nodes started as their systemd template
unit starts them (its ExecStart, its EnvironmentFile, cluster.toml) on PostgreSQL and
NATS, behind real HAProxy running the sample haproxy.cfg (TLS and health checks
included). Two real client cores connect through HAProxy and exchange a message; the node
holding a client is killed (SIGKILL), and that client is back through HAProxy on another
node, where messages still go both ways.

Only what must differ on a test machine is rewritten: ports (free ones), file paths (a
temp dir), the database (a scratch one), the bus (a private nats-server), the origin
clients dial, HAProxy's ``user``/``group`` lines (privilege dropping only) and its
``maxconn`` where this machine's open-files limit is lower."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench._postgres import scratch_database
from tenchat.client.events import ONLINE, ConnectionChanged, MessageAdded
from tenchat.client.service import Client
from tests.client.test_live import Recorder
from tests.relay.test_relay_tls import self_signed
from tests.support.clients import PASSPHRASE
from tests.support.relay import RelayProcess
from tests.support.services import REQUIRE_ENV, NatsServer, free_port

pytestmark = pytest.mark.slow

CLUSTER = Path(__file__).resolve().parent.parent / "deploy" / "cluster"
NODES = ("node1", "node2", "node3")


def haproxy() -> str:
    """The haproxy binary (Debian: apt-get install haproxy; .ci/run installs it), or skip
    (a failure under TENCHAT_REQUIRE_SERVICES=1, as for the other services)."""
    binary = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if binary is None:
        message = "haproxy is not installed (apt-get install haproxy); it runs deploy/cluster"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} [{REQUIRE_ENV}=1: services are required here]",
                        pytrace=False)
        pytest.skip(message)
    return binary


def sub_once(pattern: str, repl: str, text: str) -> str:
    """``text`` with the one match of ``pattern`` (multiline) replaced; the sample must
    still have that line, or the test is out of date."""
    out, n = re.subn(pattern, lambda _: repl, text, flags=re.MULTILINE)
    assert n == 1, f"{pattern!r} matched {n} times in the sample"
    return out


def unit_setting(key: str) -> str:
    unit = (CLUSTER / "tenchat-relay@.service").read_text()
    values = re.findall(rf"^{key}=(.*)$", unit, flags=re.MULTILINE)
    assert len(values) == 1, (key, values)
    return values[0]


class UnitNode(RelayProcess):
    """A relay node started with its unit's ExecStart and its instance's environment."""

    def __init__(self, data_dir: Path, argv: list[str], env: dict[str, str]) -> None:
        super().__init__(data_dir, env=env)
        self.argv = argv

    @property
    def command(self) -> list[str]:
        return self.argv


def read_env(path: Path, ports: dict[int, int]) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = str(ports.get(int(value), value)) if value.isdigit() else value
    return env


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        body = resp.read().decode()
    match = re.search(rf"^{name} (\S+)$", body, flags=re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"haproxy did not listen: {log.read_text()[-2000:]}") from None
            time.sleep(0.02)


@pytest.fixture
def deployment(tmp_path: Path, postgres_service: str) -> Iterator[tuple[str, list[UnitNode]]]:
    """(the URL clients dial: HAProxy, the three nodes)."""
    binary = haproxy()
    samples = {p: free_port() for p in (8761, 8762, 8763, 9461, 9462, 9463)}
    front = free_port()
    cert, key = self_signed(tmp_path)
    pem = tmp_path / "haproxy.pem"
    pem.write_text(cert.read_text() + key.read_text())
    url = f"wss://127.0.0.1:{front}"
    with NatsServer(tmp_path / "nats") as nats, scratch_database(postgres_service) as db:
        config = (CLUSTER / "cluster.toml").read_text()
        config = sub_once(r"^storage = .*$", f'storage = "{db}"', config)
        config = sub_once(r"^bus = .*$", f'bus = "{nats.url}"', config)
        config = sub_once(r"^origins = .*$", f'origins = ["{url}"]', config)
        (tmp_path / "cluster.toml").write_text(config)
        nodes = []
        for node in NODES:
            exec_start = unit_setting("ExecStart").replace("%i", node)
            exec_start = exec_start.replace("/etc/tenchat-relay/", f"{tmp_path}/")
            exec_start = exec_start.replace("/var/lib/tenchat-relay/", f"{tmp_path}/data/")
            argv = shlex.split(exec_start)
            assert argv[0] == "/usr/local/bin/tenchat-relay", argv
            argv[:1] = [sys.executable, "-m", "tenchat.relay"]
            env_file = unit_setting("EnvironmentFile").replace("%i", node)
            assert env_file == f"/etc/tenchat-relay/{node}.env"
            env = read_env(CLUSTER / f"{node}.env", samples)
            nodes.append(UnitNode(tmp_path / "data" / node, argv, env))
        cfg = (CLUSTER / "haproxy.cfg").read_text()
        cfg = sub_once(r"^    bind :443 ssl crt \S+", f"    bind 127.0.0.1:{front} ssl crt {pem}",
                       cfg)
        cfg = re.sub(r"^    (user|group) .*\n", "", cfg, flags=re.MULTILINE)
        # maxconn needs two descriptors a connection: within this machine's hard limit.
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard != resource.RLIM_INFINITY:
            maxconn = int(re.findall(r"^    maxconn (\d+)$", cfg, flags=re.MULTILINE)[0])
            fits = min(maxconn, (hard - 100) // 2)
            cfg = sub_once(r"^    maxconn \d+$", f"    maxconn {fits}", cfg)
        for old, new in samples.items():
            cfg = re.sub(rf"(?<=[: ]){old}\b", str(new), cfg)
        (tmp_path / "haproxy.cfg").write_text(cfg)
        check = subprocess.run([binary, "-c", "-f", str(tmp_path / "haproxy.cfg")],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        proxy: subprocess.Popen[bytes] | None = None
        try:
            for node in nodes:  # one after another: the first creates the schema
                node.start()
            log = tmp_path / "haproxy.log"
            with log.open("wb") as out:
                proxy = subprocess.Popen([binary, "-db", "-f", str(tmp_path / "haproxy.cfg")],
                                         stdout=out, stderr=subprocess.STDOUT)
            wait_listening(front, proxy, log)
            yield url, nodes
        finally:
            if proxy is not None:
                proxy.terminate()
                proxy.wait(10)
            for node in nodes:
                if node.running:
                    node.terminate()


def metrics_port(node: UnitNode) -> int:
    assert node.env is not None
    return int(node.env["TENCHAT_RELAY_METRICS_PORT"])


def online(e: object) -> bool:
    return isinstance(e, ConnectionChanged) and e.state == ONLINE


@pytest.mark.asyncio
async def test_three_nodes_behind_haproxy_survive_losing_one(
        deployment: tuple[str, list[UnitNode]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, nodes = deployment
    monkeypatch.setenv("TENCHAT_CA_FILE", str(tmp_path / "relay.pem"))  # HAProxy's cert
    async with asyncio.timeout(120):
        alice = await Client.create(tmp_path / "alice", url, "alice", PASSPHRASE)
        bob = await Client.create(tmp_path / "bob", url, "bob", PASSPHRASE)
        a_events, b_events = Recorder(alice), Recorder(bob)
        runs = [asyncio.create_task(alice.run()), asyncio.create_task(bob.run())]
        try:
            await a_events.wait_for(online)
            await b_events.wait_for(online)
            conv = await alice.start_conversation("@bob")
            await alice.compose(conv.peer, "through haproxy")
            got = await b_events.wait_for(lambda e: isinstance(e, MessageAdded)
                                          and not e.message.outgoing)
            assert isinstance(got, MessageAdded) and got.message.text == "through haproxy"

            # The node holding the most connections goes (leastconn spreads them).
            held = [await asyncio.to_thread(metric, metrics_port(n), "tenchat_relay_connections")
                    for n in nodes]
            total = sum(held)
            assert total >= 2, held
            victim = max(range(len(nodes)), key=lambda i: held[i])
            a_seen, b_seen = len(a_events.events), len(b_events.events)
            await asyncio.to_thread(nodes[victim].kill)

            # Its clients come back online (through HAProxy, on another node) ...
            survivors = [n for i, n in enumerate(nodes) if i != victim]

            def moved() -> list[Recorder]:
                return [ev for ev, seen in ((a_events, a_seen), (b_events, b_seen))
                        if any(online(e) for e in ev.events[seen:])]

            async def reconnected() -> None:
                while True:  # (the gauge counts a connection before it is online)
                    now = [await asyncio.to_thread(metric, metrics_port(n),
                                                   "tenchat_relay_connections")
                           for n in survivors]
                    if sum(now) >= total and moved():
                        return
                    await asyncio.sleep(0.1)

            async with asyncio.timeout(30):
                await reconnected()
            # ... and messages go both ways again.
            await alice.compose(conv.peer, "after the kill")
            got = await b_events.wait_for(lambda e: isinstance(e, MessageAdded)
                                          and e.message.text == "after the kill", timeout=30)
            back = await bob.start_conversation("@alice")
            await bob.compose(back.peer, "still here")
            got = await a_events.wait_for(lambda e: isinstance(e, MessageAdded)
                                          and e.message.text == "still here", timeout=30)
            assert isinstance(got, MessageAdded)
        finally:
            for task in runs:
                task.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
            await alice.close()
            await bob.close()
