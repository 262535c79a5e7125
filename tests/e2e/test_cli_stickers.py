"""Sticker packs by script through a real relay: make a pack, share its link, another user
installs it, a sticker is sent and received; the relay's disk holds no image bytes nor the
pack key; a sticker blob tampered with on the relay's disk is refused."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest
from PIL import Image

from tenchat.client.imaging import thumbnail
from tests.conftest import Cli
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


def noise_png(path: Path, size: tuple[int, int], fmt: str = "PNG") -> bytes:
    """Random pixels: compressed bytes that can't turn up anywhere by chance."""
    im = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    out = io.BytesIO()
    im.save(out, fmt)
    path.write_bytes(out.getvalue())
    return out.getvalue()


def relay_bytes(relay: RelayProcess) -> bytes:
    return b"".join(p.read_bytes() for p in relay.data_dir.rglob("*") if p.is_file())


def blob_files(relay: RelayProcess) -> list[Path]:
    return [p for p in (relay.data_dir / "blobs").rglob("*")
            if p.is_file() and p.parent.name != "tmp"]


def test_pack_share_install_send(cli: Cli, relay: RelayProcess, tmp_path: Path) -> None:
    for name in ("alice", "bob"):
        cli(name, "init", "--handle", name)
    cat, dog = tmp_path / "tabbycat.png", tmp_path / "dog.webp"
    cat_src = noise_png(cat, (800, 600))
    dog_src = noise_png(dog, (100, 120), "WEBP")
    jpeg = tmp_path / "photo.jpg"
    noise_png(jpeg, (50, 50), "JPEG")
    res = cli("alice", "sticker", "pack", "create", "Pets", str(jpeg), check=False)
    assert res.code == 1 and "PNG or WebP" in res.err and res.err.count("\n") == 1

    pack = cli("alice", "--json", "sticker", "pack", "create", "Pets", str(cat), str(dog)).json()
    assert pack["name"] == "Pets"
    assert [(s["number"], s["name"]) for s in pack["stickers"]] == [(1, "tabbycat"), (2, "dog")]
    assert (pack["stickers"][0]["width"], pack["stickers"][0]["height"]) == (512, 384)
    link = pack["link"]
    assert link.startswith(f"tenchat://sticker/{pack['id']}#")
    key = base64.urlsafe_b64decode(link.split("#")[1] + "=")

    got = cli("bob", "--json", "sticker", "pack", "install", link).json()
    assert got["id"] == pack["id"] and [s["name"] for s in got["stickers"]] == ["tabbycat", "dog"]
    listed = cli("bob", "--json", "sticker", "pack", "list").json_lines()
    assert [p["name"] for p in listed] == ["Pets"]

    sent = cli("alice", "--json", "sticker", "send", "bob", "pets", "tabbycat").json()
    assert sent["status"] == "sent" and sent["text"] == "[sticker: tabbycat]"
    cli("alice", "sticker", "send", "bob", "Pets", "2")
    hist = cli("bob", "--json", "history", "alice").json_lines()
    assert [m["text"] for m in hist] == ["[sticker: tabbycat]", "[sticker: dog]"]
    assert hist[0]["sticker"] == {"pack": pack["id"], "number": 1, "name": "tabbycat",
                                  "verified": True, "size": hist[0]["sticker"]["size"]}
    assert "[sticker: dog]" in cli("bob", "history", "alice", "--offline").out
    # In a group, a member who never installed the pack fetches and verifies it on sight.
    cli("carol", "init", "--handle", "carol")
    cli("alice", "group", "create", "Zoo", "carol")
    cli("alice", "sticker", "send", "zoo", "Pets", "dog")
    got = [m for m in cli("carol", "--json", "history", "zoo").json_lines() if "sticker" in m]
    assert got[0]["text"] == "[sticker: dog]" and got[0]["sticker"]["verified"] is True
    assert got[0]["from"] == "alice" and got[0]["group"] == "Zoo"
    again = cli("carol", "--json", "history", "zoo", "--offline").json_lines()
    assert again[-1]["sticker"]["verified"] is True  # kept in carol's cache
    assert cli("carol", "--json", "sticker", "pack", "list").out.strip() == ""  # not installed

    # The relay holds only ciphertext: no source or resized image bytes, no pack key.
    for stage in ("running", "stopped"):
        if stage == "stopped":
            relay.terminate()
        raw = relay_bytes(relay)
        for image in (cat_src, dog_src, thumbnail(cat_src, (512, 512)),
                      thumbnail(dog_src, (512, 512))):
            middle = image[len(image) // 2:len(image) // 2 + 48]
            assert middle not in raw, stage
        assert key not in raw and b"Pets" not in raw and b"tabbycat" not in raw, stage


def test_tampered_sticker_is_refused(cli: Cli, relay: RelayProcess, tmp_path: Path) -> None:
    for name in ("alice", "bob", "carol"):
        cli(name, "init", "--handle", name)
    img = tmp_path / "wave.png"
    noise_png(img, (64, 64))
    pack = cli("alice", "--json", "sticker", "pack", "create", "Hands", str(img)).json()
    cli("alice", "sticker", "send", "bob", "hands", "1")
    cli("bob", "inbox")  # received, not yet fetched

    blobs = blob_files(relay)
    assert len(blobs) == 2  # the image and the manifest
    image_blob = next(p for p in blobs if pack["id"] not in p.name)
    raw = bytearray(image_blob.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    image_blob.write_bytes(bytes(raw))

    res = cli("carol", "sticker", "pack", "install", pack["link"], check=False)
    assert res.code == 1 and res.err.startswith("error:") and "tampered" in res.err, res.err
    assert res.err.count("\n") == 1
    assert cli("carol", "--json", "sticker", "pack", "list").out.strip() == ""
    hist = cli("bob", "--json", "history", "alice").json_lines()
    assert hist[0]["sticker"]["verified"] is False and "tampered" in hist[0]["sticker"]["error"]
    assert "tampered" in cli("bob", "history", "alice").out
    # A damaged link is one error line too.
    res = cli("carol", "sticker", "pack", "install", "tenchat://sticker/abc#xyz", check=False)
    assert res.code == 1 and "sticker link" in res.err
