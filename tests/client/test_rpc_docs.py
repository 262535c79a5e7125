"""docs/rpc.md documents every method the daemon serves, each with a request and an
answer that are valid JSON-RPC, and every event type ``subscribe`` streams."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tenchat.client.daemon import EVENT_TYPES, OWN_METHODS
from tenchat.client.rpc_methods import METHODS

DOC = Path(__file__).resolve().parents[2] / "docs" / "rpc.md"


def sections() -> dict[str, str]:
    text = DOC.read_text()
    parts = re.split(r"^### `([^`]+)`\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_method_has_a_section_and_no_section_is_stale() -> None:
    served = set(METHODS) | set(OWN_METHODS)
    documented = set(sections())
    assert served - documented == set(), "undocumented methods"
    assert documented - served == set(), "documented methods the daemon does not serve"


def test_each_section_shows_a_request_and_its_answer() -> None:
    for method, body in sections().items():
        requests = [json.loads(line[4:]) for line in body.splitlines()
                    if line.startswith("--> ")]
        answers = [json.loads(line[4:]) for line in body.splitlines()
                   if line.startswith("<-- ")]
        assert any(r["method"] == method and r["jsonrpc"] == "2.0" for r in requests), method
        ids = {r["id"] for r in requests}
        assert any(a.get("id") in ids and ("result" in a or "error" in a)
                   for a in answers), method


def test_every_event_type_is_documented() -> None:
    table = sections()["subscribe"]
    for event in EVENT_TYPES:
        assert f"| `{event}` |" in table, event
