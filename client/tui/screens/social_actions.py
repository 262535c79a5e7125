"""Chat-screen actions on files: send one (the attachment picker), open one (an image is
previewed after the core has downloaded it and checked its hash; other files are saved)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ....common.errors import TenchatError
from ...conv import is_group
from ..social_view import fetch_blob

__all__ = ["attach", "open_attachment", "downloads_folder"]

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")


def downloads_folder(home: Path) -> Path:
    return home / "downloads"


def attach(screen: Any, peer: bytes, name: str) -> None:
    from .attach import AttachChoice, AttachScreen

    async def send(choice: AttachChoice) -> None:
        try:
            with tempfile.TemporaryDirectory(prefix="tenchat-attach-") as folder:
                path = await choice.picker.prepared(Path(folder))
                if path is None:
                    return
                screen.notify(f"Sending {path.name}…")
                await screen.client.send_attachment_to(peer, path, choice.caption)
        except (TenchatError, OSError, ValueError) as exc:
            screen.notify(str(exc), severity="error", title="Not sent")

    def chosen(choice: AttachChoice | None) -> None:
        if choice is not None:
            screen.run_worker(send(choice), group="attach")

    group = is_group(peer)
    screen.app.push_screen(AttachScreen(name if group else f"@{name}"), chosen)


async def open_attachment(screen: Any, peer: bytes, row: Any) -> None:
    client = screen.client
    ref = (await client.attachments(peer, [row.id])).get(row.id)
    if ref is None:
        screen.notify("That message has no attachment.", severity="warning")
        return
    try:
        if ref.mime in IMAGE_TYPES:
            from .image_view import ImageScreen

            data = await fetch_blob(client, ref)
            screen.app.push_screen(ImageScreen(ref.name or "image", data))
            return
        folder = downloads_folder(client.home)
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / (Path(ref.name).name or row.id.hex())
        await client.download(ref, out)
    except (TenchatError, OSError, ValueError) as exc:
        screen.notify(str(exc), severity="error", title="Not opened")
        return
    screen.notify(f"Saved to {out}")
