"""The social layer end to end over loopback: feed load and stories (issue "Social
layer": seed targets story upload < 3 s, story view < 500 ms, feed < 1 s; ours ten times
better: < 0.3 s, < 50 ms, < 100 ms).

    python -m bench.social [--runs N] [--authors N] [--image-mb MB] [--json] [--quick]

A relay in its own process on a temporary data dir, and real client cores
(``tenchat.client.service.Client``, each with its own home and SQLite cache) in this
process, talking to it over loopback WebSockets exactly as the CLI and the TUI do.

1. Feed. ``--authors`` accounts each publish a signed profile (name and bio); together
   they publish 50 posts, alternately public and followers-only (sealed under the
   author's audience key). A reader follows them all and has synced the audience keys.
   One *feed load* = ``social.feed(limit=50)`` (one ``feed`` request; every record's
   signature checked; followers-only posts opened; comment/reaction counts fetched)
   plus every distinct author's profile fetched and verified (asked for together) —
   what a screen of the feed needs. ``--runs`` loads, p50 / p99.
2. Story upload. The author posts 2 × ``--runs`` image stories of ``--image-mb`` MB (a PNG
   of noise, so it doesn't compress): ``stories.post_story(image=bytes)`` — image read,
   sealed in memory with a fresh key (secretstream), uploaded in chunks (``blob_begin``
   / ``blob_chunk``, as large as a frame allows, one at a time), the story sealed under
   the audience key, signed, ``story_put`` stored. Time from the call to its return.
3. Story view. The follower lists the stories (``stories.stories()``, as a viewer
   does first), then opens each of them: ``stories.open_story(id)`` — the story
   record decrypted, the image blob downloaded (``blob_get``), its hash checked and
   decrypted (all in memory), the story marked seen, and the view receipt encrypted
   (Double Ratchet) and stored by the relay (``send`` → ``stored``, sent while the image
   downloads). Time from the call to its return. Every other story is opened with the
   ``incognito`` setting on (no receipt), reported on a row of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._relay import BenchRelay, fs_type
from ._report import environment, ms, percentiles, scenario_main

__all__ = ["run", "main", "add_arguments", "format_table"]

FEED_POSTS = 50
TARGETS_MS = {"feed": 100.0, "story_upload": 300.0, "story_view": 50.0}
SEED_TARGETS_MS = {"feed": 1000.0, "story_upload": 3000.0, "story_view": 500.0}
PASSPHRASE = "bench passphrase"
_now = time.monotonic_ns


def add_arguments(parser: argparse.ArgumentParser, *, shared: bool = True) -> None:
    """This scenario's options; ``shared=False`` leaves out --json and --quick."""
    g = parser.add_argument_group("social")
    g.add_argument("--runs", type=int, default=None,
                   help="feed loads, story uploads and story views measured [20; 5 with --quick]")
    g.add_argument("--authors", type=int, default=None,
                   help="accounts the 50 feed posts come from [10; 5 with --quick]")
    g.add_argument("--image-mb", type=float, default=2.0,
                   help="size of each story image in MB [2]")
    if shared:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--quick", action="store_true", help="a short smoke run")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    runs = args.runs if args.runs is not None else (5 if quick else 20)
    authors = args.authors if args.authors is not None else (5 if quick else 10)
    if runs < 1 or not 1 <= authors <= FEED_POSTS or not 0 < args.image_mb <= 20:
        raise RuntimeError("--runs ≥ 1, --authors 1 to 50, --image-mb in (0, 20]")
    return {"runs": runs, "authors": authors, "image_bytes": int(args.image_mb * 1024 * 1024),
            "feed_posts": FEED_POSTS}


def noise_png(size: int) -> bytes:
    """A PNG of random pixels of about ``size`` bytes (noise doesn't compress)."""
    from PIL import Image

    side = max(8, int((size / 3) ** 0.5))
    im = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


async def _clients(home: Path, url: str, names: list[str]) -> list[Any]:
    from tenchat.client.service import Client

    return [await Client.create(home / n, url, n, PASSPHRASE) for n in names]


async def _scenario(url: str, home: Path, s: dict[str, Any]) -> dict[str, Any]:
    names = [f"author{i}" for i in range(s["authors"])]
    authors = await _clients(home, url, names)
    (reader,) = await _clients(home, url, ["reader"])
    try:
        # --- prepare: profiles, follows, 50 posts, audience keys delivered -----------------
        for i, a in enumerate(authors):
            await a.social.set_profile(name=f"Author {i}", bio="writes benchmarks " * 5)
            await reader.social.follow(f"@{names[i]}")
        for i in range(FEED_POSTS):
            a = authors[i % len(authors)]
            await a.social.post(f"post {i}: " + "lorem ipsum " * 10,
                                audience="followers" if i % 2 else "public")
        await reader.sync()
        check = await reader.social.feed(limit=FEED_POSTS)
        if len(check) != FEED_POSTS or any(v.text is None for v in check):
            raise RuntimeError("the reader can't read all 50 posts")

        # --- 1. feed load ---------------------------------------------------------------
        feed_ns: list[int] = []
        for _ in range(s["runs"]):
            t0 = _now()
            views = await reader.social.feed(limit=FEED_POSTS)
            who = list(dict.fromkeys(v.author for v in views))
            # asked for together, as a feed screen does: pipelined on the one connection
            profiles = dict(zip(who, await asyncio.gather(
                *(reader.social.fetch_profile(a) for a in who)), strict=True))
            feed_ns.append(_now() - t0)
            if len(views) != FEED_POSTS or len(profiles) != len(authors):
                raise RuntimeError("a feed load came back short")

        # --- 2. story upload, 3. story view -------------------------------------------------
        poster = authors[0]
        images = [noise_png(s["image_bytes"]) for _ in range(2 * s["runs"])]
        upload_ns: list[int] = []
        posted = []
        for data in images:
            t0 = _now()
            view = await poster.stories.post_story(image=data)
            upload_ns.append(_now() - t0)
            posted.append(view.id)
        await reader.sync()  # the audience key is already there; nothing new to wait for
        listed = {v.id for v in await reader.stories.stories()}  # as a viewer lists them
        if not set(posted) <= listed:
            raise RuntimeError("the reader does not see every story")
        view_ns: list[int] = []
        quiet_ns: list[int] = []  # incognito: the same without the view receipt
        for i, (story_id, data) in enumerate(zip(posted, images, strict=True)):
            incognito = i % 2 == 1
            await reader.set_setting("incognito", incognito)
            t0 = _now()
            opened = await reader.stories.open_story(story_id)
            (quiet_ns if incognito else view_ns).append(_now() - t0)
            if opened.image != data:
                raise RuntimeError("a story image came back different")
        await poster.sync()
        viewed = len(await poster.stories.viewers(posted[0]))
        return {
            "feed_ms": percentiles(feed_ns),
            "story_upload_ms": percentiles(upload_ns),
            "story_view_ms": percentiles(view_ns),
            "story_view_incognito_ms": percentiles(quiet_ns),
            "image_png_bytes": len(images[0]),
            "receipts_received": viewed,
        }
    finally:
        for c in [*authors, reader]:
            await c.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    s = _settings(args)
    out: dict[str, Any] = {"scenario": "social", **environment(), "settings": s}
    with BenchRelay(name="bench-social") as relay, \
            tempfile.TemporaryDirectory(prefix="tenchat-bench-homes-") as homes:
        out["data_fs"] = fs_type(relay.data_dir)
        out.update(asyncio.run(_scenario(relay.url, Path(homes), s)))
    verdict = {}
    for key, target in TARGETS_MS.items():
        p99 = out[f"{key}_ms"]["p99"]
        verdict[key] = {"target_ms": target, "seed_target_ms": SEED_TARGETS_MS[key],
                        "p99_ms": p99, "holds": p99 < target}
    out["targets"] = verdict
    out["ok"] = out["receipts_received"] == 1
    return out


def format_table(out: dict[str, Any]) -> str:
    s = out["settings"]
    v = out["targets"]

    def row(label: str, key: str) -> str:
        st = out[f"{key}_ms"]
        t = v.get(key)
        verdict = f"   < {t['target_ms']:g} ms: {'holds' if t['holds'] else 'MISSES'}" if t else ""
        return f"{label:<44}{ms(st['p50']):>9}{ms(st['p99']):>9}{ms(st['max']):>9}{verdict}"

    return "\n".join([
        "tenchat social benchmark (feed and stories, end to end over loopback)",
        f"  date      {out['date']}",
        f"  commit    {out['commit']}",
        f"  machine   {out['cores']} cores, {out['platform']}",
        f"  python    {out['implementation']} {out['python']}",
        f"  relay     own process, sync=full, SQLite on {out['data_fs']}; clients in-process",
        f"  feed      {s['feed_posts']} posts (half followers-only) by {s['authors']} authors"
        f" with profiles; {s['runs']} runs",
        f"  stories   {2 * s['runs']} image stories of {out['image_png_bytes']:,} bytes (PNG),"
        f" every other one viewed in incognito",
        "",
        f"{'measure (ms)':<44}{'p50':>9}{'p99':>9}{'max':>9}   target (p99; seed ×10)",
        row("feed load: 50 posts + authors' profiles", "feed"),
        row("story upload: seal, upload, sign, store", "story_upload"),
        row("story view: fetch, verify, decrypt, receipt", "story_view"),
        row("  the same in incognito (no receipt)", "story_view_incognito"),
    ])


def main(argv: list[str] | None = None) -> int:
    return scenario_main("python -m bench.social", __doc__, add_arguments, run,
                         format_table, argv)

if __name__ == "__main__":
    sys.exit(main())
