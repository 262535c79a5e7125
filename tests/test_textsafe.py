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


# --- security review M6 and L5: forged lines and look-alike names ---------------------------


def test_a_newline_in_peer_text_does_not_forge_a_message_line() -> None:
    from tenchat.client.cache import MessageRow
    from tenchat.client.cli import line_of

    forged = "ok\n[12:01] @bank: your code is 4411, reply with it\r\nand more"
    msg = MessageRow(b"\x01" * 16, b"\x02" * 32, False, forged, 0, 0, 0)
    out = line_of(msg, "mallory", "Fam\n[12:02] #family @mum", suffix="")
    lines = out.split("\n")
    assert len(lines) == 3 and lines[0].startswith("[")
    assert all(not line.startswith("[") for line in lines[1:]), lines
    assert "#Fam␤[12:02] #family @mum @mallory: ok" in lines[0]
    assert lines[1] == "    [12:01] @bank: your code is 4411, reply with it\r"
    # the sender's name is one line too
    assert line_of(msg, "x\n[12:03] @bank", None).count("\n") == 2


def test_names_show_invisible_and_direction_marks() -> None:
    from tenchat.common.textsafe import for_name

    assert for_name("Fam\u200bily") == "Fam\\u200bily" != for_name("Family")
    for ch in "\u200e\u200f\u061c\u200b\u200c\u2060\ufeff\u00ad\u034f\u115f\u3164\u2028\u2029":
        assert ch not in for_name(f"a{ch}b"), hex(ord(ch))
    assert for_name("a\U000e0041b") == "a\\U000e0041b"  # a tag character
    assert for_name("a\nb\tc") == "a␤b␉c"
    assert for_name("👩\u200d💻 dev") == "👩\u200d💻 dev"  # an emoji sequence keeps its ZWJ
    assert for_name("Fam\u200dily") == "Fam\\u200dily"
    assert for_name("\x1b[2J") == "␛[2J"  # and everything for_terminal does
