"""Relays met before, like SSH's known_hosts: the name each relay announced, pinned per
relay origin (``scheme://host[:port]``) on first use.

A relay that later announces another name at the same origin is refused
(:class:`~tenchat.client.connection.RelayChanged`) until the user accepts the change
with ``tenchat relay trust URL``. The file is ``HOME/known_relays.json``:
``{"<origin>": {"name": "<announced name>", "since": <ms since the epoch>}}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

from ..common.errors import TenchatError

__all__ = ["KnownRelays", "known_relays_path"]


def known_relays_path(home: Path) -> Path:
    return home / "known_relays.json"


class KnownRelays:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise TenchatError(f"cannot read {self.path}: {exc}") from None
        if not isinstance(data, dict):
            raise TenchatError(f"{self.path} is not a JSON object")
        return {k: v for k, v in data.items() if isinstance(v, dict)}

    def get(self, origin: str) -> str | None:
        entry = self.load().get(origin)
        name = entry.get("name") if entry else None
        return name if isinstance(name, str) else None

    def pin(self, origin: str, name: str) -> None:
        data = self.load()
        data[origin] = {"name": name, "since": int(time.time() * 1000)}
        self._save(data)

    def forget(self, origin: str) -> bool:
        data = self.load()
        found = data.pop(origin, None) is not None
        if found:
            self._save(data)
        return found

    def _save(self, data: dict[str, dict[str, object]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a temporary file of its own: two commands pinning at once must not collide
        fd, name = tempfile.mkstemp(prefix=self.path.name + ".", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
            os.replace(name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
