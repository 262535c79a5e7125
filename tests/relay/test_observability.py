"""/healthz and /metrics scraped over real HTTP from a running relay, and JSON logs."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenchat.common.frames import Ack, Error, Fetch, Messages, Ok, Send, Stored
from tests.support.relay import RelayProcess
from tests.support.wsclient import async_test, logged_in, msg_id

pytestmark = pytest.mark.slow

SECRET_BODY = b"plaintext-that-must-never-be-logged"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, ctype, body = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and ctype.startswith("text/plain"), (status, ctype)
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@async_test
async def test_metrics_and_health_over_http(tmp_path: Path) -> None:
    port = free_port()
    relay = RelayProcess(tmp_path / "data", args=["--metrics-port", str(port),
                                                  "--log-format", "json"])
    with relay:
        status, ctype, body = get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and ctype == "application/json"
        health = json.loads(body)
        assert health["status"] == "ok" and health["store"]["writable"] is True
        assert health["disk_free_bytes"] > 0
        assert get(f"http://127.0.0.1:{port}/nope")[0] == 404

        async with logged_in(relay.url) as (a, b):
            before = scrape(port)
            assert value(before, "tenchat_relay_connections") == 2
            seqs = []
            for _ in range(5):
                stored = await a.call(Send, to=b.user, msg=msg_id(), body=SECRET_BODY)
                assert isinstance(stored, Stored)
                seqs.append(stored.seq)
            bad = await a.request_raw(msgspec.msgpack.encode({"t": "send", "id": 9}), 9)
            assert isinstance(bad, Error) and bad.error == "malformed"
            page = await b.call(Fetch, user=b.user)
            assert isinstance(page, Messages) and len(page.items) == 5

            after = scrape(port)
            assert value(after, "tenchat_relay_frames_total", type="send") == 5
            assert value(after, "tenchat_relay_frames_total", type="fetch") == 1
            assert value(after, "tenchat_relay_frames_total", type="invalid") == 1
            assert value(after, "tenchat_relay_errors_total", code="malformed") == 1
            assert value(after, "tenchat_relay_queued_messages") == 5
            commits = value(after, "tenchat_relay_store_commit_seconds_count")
            assert commits >= value(before, "tenchat_relay_store_commit_seconds_count") + 1
            assert value(after, "tenchat_relay_store_commit_seconds_sum") > 0
            assert value(after, "tenchat_relay_connections_accepted_total") >= 2
            assert value(after, "tenchat_relay_store_write_queue") == 0

            assert isinstance(await b.call(Ack, seqs=seqs), Ok)
            assert value(scrape(port), "tenchat_relay_queued_messages") == 0
        assert value(scrape(port), "tenchat_relay_connections") == 0

    lines = [line for line in relay.log_path.read_text().splitlines() if line.strip()]
    assert lines, "the relay logged nothing"
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= e.keys() for e in entries)
    assert any("health and metrics on http://127.0.0.1" in e["msg"] for e in entries)
    # the SQLite writer process's lines too (it migrated the new file), at the relay's level
    assert any(e["msg"].startswith("migrated relay.sqlite3") for e in entries)
    assert SECRET_BODY.decode() not in relay.log_path.read_text()
