"""notify-send gets peer text as plain arguments, never as options or markup (security
review L6): a real executable records the argv it was given."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tenchat.client.tui.notify import Notifier


@pytest.mark.asyncio
async def test_peer_text_is_not_an_option_nor_markup(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    fake = tmp_path / "notify-send"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({str(out)!r}, 'w').write(json.dumps(sys.argv[1:]))\n")
    fake.chmod(0o755)

    n = Notifier(lambda: None, notify_send=str(fake))
    await n._desktop("-i/etc/passwd\u200bFamily", "--app-name=Bank <b>pay</b> <a href='x'>")
    argv = json.loads(out.read_text())
    assert argv[:2] == ["--app-name=tenchat", "--"]
    assert argv[2] == "-i/etc/passwd\\u200bFamily"  # after "--": a title, not an option
    assert argv[3] == "--app-name=Bank &lt;b&gt;pay&lt;/b&gt; &lt;a href='x'&gt;"
