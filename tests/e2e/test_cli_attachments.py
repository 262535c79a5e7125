"""Attachments by script through a real relay: send a file, download it, bytes equal; the
relay's disk holds only ciphertext; a blob tampered on the relay's disk is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow

MARKER = b"ATTACHMENT-PLAINTEXT-MARKER:"


def make_file(path: Path, size: int) -> bytes:
    # A recognisable plaintext, longer than a few secretstream chunks and upload pieces.
    data = (MARKER + os.urandom(40)) * (size // (len(MARKER) + 40) + 1)
    path.write_bytes(data[:size])
    return data[:size]


def relay_bytes(relay: RelayProcess) -> bytes:
    return b"".join(p.read_bytes() for p in relay.data_dir.rglob("*") if p.is_file())


def test_send_file_download_it(cli: Cli, relay: RelayProcess, tmp_path: Path) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    src = tmp_path / "report final.pdf"
    data = make_file(src, 700_000)

    sent = cli("alice", "--json", "send", "bob", "the report", "--attach", str(src)).json()
    assert sent["status"] == "sent" and sent["to"] == "bob"
    # A file without a caption shows as its name.
    small = tmp_path / "note.txt"
    small.write_bytes(b"tiny")
    sent2 = cli("alice", "--json", "send", "bob", "--attach", str(small)).json()

    got = cli("bob", "--json", "inbox").json_lines()
    assert [(m["id"], m["text"]) for m in got] == [
        (sent["id"], "the report"), (sent2["id"], "[note.txt]")]
    assert got[0]["attachment"] == {"name": "report final.pdf", "size": len(data),
                                    "mime": "application/pdf"}
    assert got[1]["attachment"]["size"] == 4

    out_dir = tmp_path / "bob-downloads"
    out_dir.mkdir()
    res = cli("bob", "--json", "download", sent["id"][:10], "-o", str(out_dir)).json()
    assert res == {"id": sent["id"], "path": str(out_dir / "report final.pdf"),
                   "size": len(data), "name": "report final.pdf"}
    assert (out_dir / "report final.pdf").read_bytes() == data
    # Human output: the saved path, one line. An existing file is not overwritten.
    target = out_dir / "n.txt"
    assert cli("bob", "download", sent2["id"], "-o", str(target)).out.strip() == str(target)
    assert target.read_bytes() == b"tiny"
    again = cli("bob", "download", sent2["id"], "-o", str(target), check=False)
    assert again.code == 1 and again.err.startswith("error:") and "exists" in again.err

    hist = cli("alice", "--json", "history", "bob").json_lines()
    assert hist[0]["attachment"]["name"] == "report final.pdf"
    assert "[file report final.pdf" in cli("bob", "history", "alice", "--offline").out
    # The sender can fetch her own attachment too.
    mine = tmp_path / "alice-copy"
    cli("alice", "download", sent["id"], "-o", str(mine))
    assert mine.read_bytes() == data

    # Neither the relay's database nor its blob files hold the plaintext (nor the caption).
    for stage in ("running", "stopped"):
        if stage == "stopped":
            relay.terminate()  # checkpoint the WAL into the main file
        raw = relay_bytes(relay)
        assert MARKER not in raw and b"the report" not in raw, stage
        assert b"report final.pdf" not in raw and b"note.txt" not in raw, stage


def test_tampered_blob_is_refused(cli: Cli, relay: RelayProcess, tmp_path: Path) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    src = tmp_path / "photo.jpg"
    make_file(src, 200_000)
    sent = cli("alice", "--json", "send", "bob", "--attach", str(src)).json()
    cli("bob", "inbox")

    blobs = [p for p in (relay.data_dir / "blobs").rglob("*")
             if p.is_file() and p.parent.name != "tmp"]
    assert len(blobs) == 1
    raw = bytearray(blobs[0].read_bytes())
    raw[len(raw) // 2] ^= 0x01
    blobs[0].write_bytes(bytes(raw))

    out = tmp_path / "got.jpg"
    res = cli("bob", "download", sent["id"], "-o", str(out), check=False)
    assert res.code == 1
    assert res.err.count("\n") == 1 and res.err.startswith("error:"), res.err
    assert "tampered" in res.err
    assert not out.exists()
    assert list(tmp_path.glob(".got.jpg*")) == []  # no partial file left either


def test_download_errors_are_one_line(cli: Cli, tmp_path: Path) -> None:
    cli("alice", "init", "--handle", "alice")
    cli("bob", "init", "--handle", "bob")
    sent = cli("alice", "--json", "send", "bob", "no file here").json()
    cli("bob", "inbox")
    for args in (["download", sent["id"]], ["download", "zz"],
                 ["send", "bob", "--attach", str(tmp_path / "missing.bin")],
                 ["send", "bob"]):
        res = cli("bob", *args, check=False)
        assert res.code != 0 and res.err.startswith("error:"), (args, res.err)
        assert res.err.count("\n") == 1, (args, res.err)


def test_group_attachment(cli: Cli, tmp_path: Path) -> None:
    for name in ("alice", "bob"):
        cli(name, "init", "--handle", name)
    cli("alice", "group", "create", "Ops", "bob")
    src = tmp_path / "plan.txt"
    data = make_file(src, 150_000)
    sent = cli("alice", "--json", "group", "send", "ops", "the plan", "--attach", str(src)).json()
    got = cli("bob", "--json", "inbox").json_lines()
    mine = [m for m in got if m["id"] == sent["id"]]
    assert mine and mine[0]["group"] == "Ops" and mine[0]["text"] == "the plan"
    assert mine[0]["attachment"]["name"] == "plan.txt"
    out = tmp_path / "bob-plan.txt"
    cli("bob", "download", sent["id"], "-o", str(out))
    assert out.read_bytes() == data
