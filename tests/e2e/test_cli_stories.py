"""Stories through the scripted CLI and a real relay: sealed for followers or close
friends, view receipts (none in incognito), nothing readable on the relay's disk, and
gone from the relay and the clients 24 hours later (their clocks started a day ahead)."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tenchat.client.imaging import apply_filter
from tests.conftest import PASSPHRASE, Cli
from tests.support.cache_file import open_home_cache
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow

DAY_MS = 24 * 3600 * 1000


class ClockCli(Cli):
    """A CLI whose clients and relay run ``offset`` ms ahead (TENCHAT_CLOCK_OFFSET_MS,
    read once at each process's start: move_clock restarts the relay)."""

    offset = 0

    def env(self, **extra: str) -> dict[str, str]:
        return super().env(TENCHAT_CLOCK_OFFSET_MS=str(self.offset), **extra)

    def move_clock(self, offset: int) -> None:
        assert self.relay is not None
        self.offset = offset
        self.relay.env = {**(self.relay.env or {}), "TENCHAT_CLOCK_OFFSET_MS": str(offset)}
        self.relay.restart()


@pytest.fixture
def scli(tmp_path: Path) -> Iterator[ClockCli]:
    relay = RelayProcess(tmp_path / "relay", args=["--story-sweep-interval", "1"]).start()
    try:
        yield ClockCli(tmp_path, relay)
    finally:
        if relay.running:
            relay.terminate()


def png(seed: int) -> bytes:
    im = Image.new("RGB", (64, 48))
    im.putdata([((x * 7 + seed) % 256, (y * 5) % 256, (x * y + seed) % 256)
                for y in range(48) for x in range(64)])
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def relay_db(cli: Cli, sql: str) -> list[tuple[object, ...]]:
    assert cli.relay is not None
    with sqlite3.connect(cli.relay.data_dir / "relay.sqlite3") as db:
        return db.execute(sql).fetchall()


def relay_disk(cli: Cli) -> bytes:
    """Every byte of the relay's database files and blob files, read raw."""
    assert cli.relay is not None
    files = [p for p in cli.relay.data_dir.rglob("*") if p.is_file()]
    return b"".join(p.read_bytes() for p in sorted(files))


def blob_files(cli: Cli) -> list[Path]:
    assert cli.relay is not None
    root = cli.relay.data_dir / "blobs"
    return [p for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp"]


def sends_by(cli: Cli, user_hex: str) -> int:
    """Rows the relay keeps for every `send` frame (its dedupe table), from anyone: they
    do not name their sender (relay/storage/dedupe.py), and nobody else sends meanwhile.
    ``user_hex`` says whose sends the caller counts."""
    del user_hex
    # (the dedupe keys: the latest in sent_log, folded into sent later, a key in both
    # while a fold is under way: relay/storage/sqlite/sent_log.py)
    return int(relay_db(cli, "SELECT count(*) FROM (SELECT sender, msg_id FROM sent UNION"
                             " SELECT sender, msg_id FROM sent_log)")[0][0])  # type: ignore[call-overload]


def test_stories_for_followers_close_friends_and_view_receipts(scli: ClockCli,
                                                                tmp_path: Path) -> None:
    cli = scli
    for name in ("alice", "bob", "carol"):
        cli(name, "init", "--handle", name)
    ids = {n: cli(n, "--json", "whoami").json()["user_id"] for n in ("bob", "carol")}
    cli("bob", "follow", "alice")
    assert cli("alice", "story", "close-friends", "add", "bob", "--json").json() == {
        "handle": "bob", "close_friend": True}
    assert [f["handle"] for f in cli("alice", "story", "close-friends", "list",
                                     "--json").json_lines()] == ["bob"]

    original = png(1)
    img = tmp_path / "sunrise.png"
    img.write_bytes(original)
    text_story = cli("alice", "story", "post", "morning zebra", "--json").json()
    assert text_story["audience"] == "followers" and not text_story["has_image"]
    assert text_story["expires_at"] - text_story["posted_at"] == DAY_MS
    image_story = cli("alice", "story", "post", str(img), "--filter", "sepia",
                      "--text", "look", "--json").json()
    assert image_story["has_image"]
    cf_story = cli("alice", "story", "post", "cf only quokka", "--close-friends",
                   "--json").json()
    assert cf_story["audience"] == "close_friends"
    bad = cli("alice", "story", "post", "words", "--filter", "sepia", check=False)
    assert bad.code == 1 and bad.err.startswith("error:") and "Traceback" not in bad.err
    bad = cli("alice", "story", "post", str(img), "--filter", "vintage", check=False)
    assert bad.code == 1 and "unknown filter" in bad.err

    # bob follows and is a close friend: he sees all three, unseen
    listed = cli("bob", "story", "list", "--json").json_lines()
    assert {s["id"] for s in listed} == {text_story["id"], image_story["id"], cf_story["id"]}
    assert all(s["author"] == "alice" and not s["seen"] for s in listed)

    # carol follows nobody: the relay's ciphertext doesn't open for her
    res = cli("carol", "story", "view", "@alice", check=False)
    assert res.code == 1 and "can't open this story" in res.err
    assert cli("carol", "story", "list", "--json").json_lines() == []
    # she follows; alice's next story syncs the audience key to her — but not the
    # close-friends key
    cli("carol", "follow", "alice")
    later = cli("alice", "story", "post", "hello carol", "--json").json()
    got = {s["id"] for s in cli("carol", "story", "list", "--json").json_lines()}
    assert got == {text_story["id"], image_story["id"], later["id"]}
    res = cli("carol", "story", "view", cf_story["id"], check=False)
    assert res.code == 1 and "close friends" in res.err

    # bob views: text printed, the filtered image saved; alice gets view receipts,
    # which reach the relay as ordinary `send`s (one row each in its dedupe table)
    before = sends_by(cli, ids["bob"])
    viewed = cli("bob", "story", "view", text_story["id"], "--json").json()
    assert viewed["text"] == "morning zebra" and viewed["seen"]
    assert sends_by(cli, ids["bob"]) == before + 1
    out = tmp_path / "got.png"
    viewed = cli("bob", "story", "view", image_story["id"][:8], "-o", str(out),
                 "--json").json()
    assert viewed["text"] == "look" and viewed["image_file"] == str(out)
    assert out.read_bytes() == apply_filter(original, "sepia") != original
    assert "cf only quokka" in cli("bob", "story", "view", cf_story["id"]).out
    assert sends_by(cli, ids["bob"]) == before + 3
    seen = {s["id"]: s["seen"] for s in cli("bob", "story", "list", "--json").json_lines()}
    assert seen[text_story["id"]] and not seen[later["id"]]

    viewers = cli("alice", "story", "viewers", text_story["id"], "--json").json_lines()
    assert [v["handle"] for v in viewers] == ["bob"]
    assert "@bob" in cli("alice", "story", "viewers", cf_story["id"]).out
    res = cli("bob", "story", "viewers", text_story["id"], check=False)
    assert res.code == 1 and "only the author" in res.err

    # carol in incognito: she reads the story, alice learns nothing, no send at all
    cli("carol", "settings", "set", "incognito", "on")
    before = sends_by(cli, ids["carol"])
    assert "hello carol" in cli("carol", "story", "view", later["id"]).out
    assert sends_by(cli, ids["carol"]) == before
    assert cli("alice", "story", "viewers", later["id"], "--json").json_lines() == []
    # out of incognito, her next story view sends a receipt
    cli("carol", "settings", "set", "incognito", "off")
    cli("carol", "story", "view", text_story["id"])
    assert sends_by(cli, ids["carol"]) == before + 1
    assert [v["handle"] for v in cli("alice", "story", "viewers", text_story["id"],
                                     "--json").json_lines()] == ["bob", "carol"]

    # the relay's disk: no story text, no image bytes (original or filtered)
    disk = relay_disk(cli)
    filtered = apply_filter(original, "sepia")
    for secret in (b"morning zebra", b"cf only quokka", b"hello carol", original[64:128],
                   filtered[64:128]):
        assert secret not in disk
    assert len(blob_files(cli)) == 1


def test_stories_expire_on_the_relay_and_in_clients(scli: ClockCli, tmp_path: Path) -> None:
    cli = scli
    for name in ("alice", "bob"):
        cli(name, "init", "--handle", name)
    cli("bob", "follow", "alice")
    img = tmp_path / "pic.png"
    img.write_bytes(png(2))
    cli("alice", "story", "post", "short lived")
    cli("alice", "story", "post", str(img))
    assert len(cli("bob", "story", "list", "--json").json_lines()) == 2
    assert relay_db(cli, "SELECT count(*) FROM stories") == [(2,)]
    assert len(blob_files(cli)) == 1
    with contextlib.closing(open_home_cache(cli.home("bob"), PASSPHRASE)) as db:
        assert db.execute("SELECT count(*) FROM stories").fetchone() == (2,)

    # 23 hours on: still there
    scli.move_clock(23 * 3600 * 1000)
    assert len(cli("bob", "story", "list", "--json").json_lines()) == 2

    # 24 hours and a minute on: gone for readers at once, from the caches, and the
    # relay's sweep (every second here) deletes the rows and the blob file
    scli.move_clock(DAY_MS + 60_000)
    assert cli("bob", "story", "list", "--json").json_lines() == []
    assert "(no stories)" in cli("alice", "story", "list").out
    for home in ("alice", "bob"):
        with contextlib.closing(open_home_cache(cli.home(home), PASSPHRASE)) as db:
            assert db.execute("SELECT count(*) FROM stories").fetchone() == (0,)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if (relay_db(cli, "SELECT count(*) FROM stories") == [(0,)]
                and relay_db(cli, "SELECT count(*) FROM blobs") == [(0,)]
                and not blob_files(cli)):
            break
        time.sleep(0.2)
    assert relay_db(cli, "SELECT count(*) FROM stories") == [(0,)]
    assert relay_db(cli, "SELECT count(*) FROM blobs") == [(0,)]
    assert blob_files(cli) == []
    # her own are gone for alice too
    res = cli("alice", "story", "view", "@alice", check=False)
    assert res.code == 1 and "no stories" in res.err

    # `post --image --filter`: the filter is applied before sealing (the sealed size is
    # the filtered image's), and a bad filter is one error line
    original = png(3)
    img.write_bytes(original)
    cli("alice", "post", "filtered", "--image", str(img), "--filter", "grayscale")
    feed = cli("bob", "feed", "--json").json_lines()
    assert feed[0]["text"] == "filtered"
    gray = apply_filter(original, "grayscale")
    assert feed[0]["images"][0]["size"] == len(gray) != len(original)
    res = cli("alice", "post", "x", "--image", str(img), "--filter", "blur:999", check=False)
    assert res.code == 1 and res.err.count("\n") == 1 and "blur" in res.err
    res = cli("alice", "post", "x", "--filter", "sepia", check=False)
    assert res.code == 1 and "--image" in res.err
