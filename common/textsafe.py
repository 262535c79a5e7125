"""Peer-controlled text made safe for a terminal (pure: no I/O).

A peer (or a hostile relay) chooses the bytes of message texts, display names, bios,
posts, comments, poll options, sticker and pack names, group names, file names and gift
notes. Written raw to a terminal, control characters in them are commands: OSC
(``ESC ] 0;title BEL``) retitles the window, CSI (``ESC [2J``) clears the screen, and a
bare ``\\r ESC [K`` rewrites the current line so a message seems to come from someone
else. Bidi overrides reorder what follows them ("Trojan Source").

:func:`for_terminal` makes every such character visible instead:

- C0 controls (U+0000–U+001F) except ``\\n`` and ``\\t``, and DEL (U+007F), become their
  Unicode control pictures (U+2400–U+241F, U+2421): ESC prints as ``␛``, CR as ``␍``.
- C1 controls (U+0080–U+009F; U+009B is a one-character CSI for some terminals) have no
  pictures: they print as the escape text ``\\x9b``.
- Bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) print as the
  escape text ``\\u202e``, so they reorder nothing.

Everything else is unchanged (``\\n`` and ``\\t`` too), so ordinary text — any script,
emoji, the implicit-direction marks U+200E/U+200F — looks as the peer wrote it.

:func:`json_for_terminal` does the same for JSON text made by ``json.dumps`` (which
escapes C0 controls but not C1 or bidi controls with ``ensure_ascii=False``): the result
is still exact JSON that parses to the same values.
"""

from __future__ import annotations

import re

__all__ = ["for_terminal", "for_name", "json_for_terminal", "indent_lines", "UNSAFE"]

# Every character for_terminal replaces.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    if code <= 0x9F:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def for_terminal(text: str) -> str:
    """``text`` with its terminal controls and bidi overrides made visible (see above)."""
    if UNSAFE.search(text) is None:  # the common case: nothing to do, no copy
        return text
    return UNSAFE.sub(_visible, text)


# For single-line names (display, group, file, sticker and pack names) also: line and
# paragraph breaks and tabs, the implicit bidi marks (U+200E, U+200F, U+061C) and
# zero-width or invisible characters, which make look-alikes ("Fam\u200bily"), and tag
# characters. ZWJ (U+200D) stays between two symbols, where it joins an emoji sequence.
_NAME_UNSAFE = re.compile(
    "[\n\t\u2028\u2029\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e"
    "\u200b-\u200f\u2060-\u2064\u206a-\u206f\u3164\ufeff\uffa0"
    "\U000e0000-\U000e007f]")


def _name_visible(match: re.Match[str]) -> str:
    ch = match.group()
    if ch == "\n":
        return "\u2424"  # ␤
    if ch == "\t":
        return "\u2409"  # ␉
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


def _symbol(ch: str) -> bool:
    import unicodedata

    return unicodedata.category(ch) in ("So", "Sk") or ch == "\ufe0f"


def for_name(text: str) -> str:
    """A single-line name made safe: :func:`for_terminal`, and also line breaks, tabs,
    implicit bidi marks and invisible characters made visible (a ZWJ inside an emoji
    sequence is kept)."""
    text = for_terminal(text)
    if _NAME_UNSAFE.search(text) is None:
        return text
    out = []
    for i, ch in enumerate(text):
        joins = (ch == "\u200d" and 0 < i < len(text) - 1 and _symbol(text[i - 1])
                 and _symbol(text[i + 1]))
        match = None if joins else _NAME_UNSAFE.fullmatch(ch)
        out.append(ch if match is None else _name_visible(match))
    return "".join(out)


def indent_lines(text: str, indent: str = "    ") -> str:
    """Multi-line peer text for a line-oriented output: every line after the first is
    indented, so no line of it can pass for a new record (``[12:01] @bank: ...``)."""
    return text.replace("\n", "\n" + indent) if "\n" in text else text


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_for_terminal(dumped: str) -> str:
    """JSON text (from ``json.dumps``) with any raw control or bidi character written as a
    ``\\uXXXX`` escape. Outside strings JSON is ASCII punctuation, so every such character
    is inside a string, where the escape means the same character: the JSON parses to the
    same values."""
    if UNSAFE.search(dumped) is None:
        return dumped
    return UNSAFE.sub(_json_escape, dumped)
