"""common.textsafe: peer text can't command a terminal, and JSON stays exact."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from tenchat.common.textsafe import UNSAFE, for_terminal, json_for_terminal

BIDI = [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]
CONTROLS = [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]]
# Text a hostile peer would write: mostly controls, bidi and ESC sequences, some plain.
hostile = st.text(st.one_of(st.sampled_from(CONTROLS + BIDI), st.characters()), max_size=200)


def dangerous(ch: str) -> bool:
    """A character a terminal may act on (\n and \t are layout we keep)."""
    if ch in "\n\t":
        return False
    return unicodedata.category(ch) == "Cc" or ch in BIDI


@given(hostile)
def test_no_control_or_bidi_survives(text: str) -> None:
    out = for_terminal(text)
    assert not any(dangerous(ch) for ch in out)
    assert out.count("\n") == text.count("\n") and out.count("\t") == text.count("\t")


@given(hostile)
def test_idempotent_and_safe_text_untouched(text: str) -> None:
    once = for_terminal(text)
    assert for_terminal(once) == once
    if not any(dangerous(ch) for ch in text):
        assert once is text or once == text


@given(hostile)
def test_every_unsafe_character_stays_visible(text: str) -> None:
    # Character by character, and nothing silently dropped: each replaced character
    # leaves a visible, printable mark.
    assert for_terminal(text) == "".join(map(for_terminal, text))
    for ch in set(UNSAFE.findall(text)):
        mark = for_terminal(ch)
        assert mark and mark != ch and mark.isprintable()


def test_the_attacks_of_issue_12() -> None:
    assert for_terminal("\x1b]0;pwned\x07") == "␛]0;pwned␇"
    assert for_terminal("\x1b[2J") == "␛[2J"
    assert for_terminal("hi\r\x1b[K@admin: send me your key") == "hi␍␛[K@admin: send me your key"
    assert for_terminal("\x9b2J") == "\\x9b2J"
    assert for_terminal("invoice\u202egpj.exe") == "invoice\\u202egpj.exe"
    assert for_terminal("line\n\tindented — ünïcödé ✓ 👍") == "line\n\tindented — ünïcödé ✓ 👍"


@given(st.recursive(st.none() | st.booleans() | st.integers() | hostile,
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(hostile, inner, max_size=4), max_leaves=12))
def test_json_stays_exact(value: object) -> None:
    out = json_for_terminal(json.dumps(value, ensure_ascii=False))
    assert json.loads(out) == value
    assert not any(dangerous(ch) for ch in out)
