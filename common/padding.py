"""Padding of end-to-end payloads, so a ciphertext's size says little about its content.

Every plaintext a client encrypts (1:1 ratchet or group sender key) is one MessagePack map
(docs/protocol.md §11). Before encryption it gets one more entry, ``"pad"``, whose value is
a ``bin`` of zero bytes, sized so the whole map is exactly :func:`padded_size` bytes:

* at least :data:`MIN_PADDED` (256) bytes, so receipts, typing indicators, reactions and
  texts up to ~190 bytes (UTF-8) all have one size;
* above that, Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
  Communication with PURBs", PETS 2019): the length rounded up so that only about
  ``log2(log2(L))`` of its low bits are free — at most ~12 % larger, and a size reveals
  O(log log L) bits instead of all of them.

Why not Padmé alone: for small L it rounds to a few bytes (a 60-byte receipt and a
70-byte text stay apart), and small messages are where "receipt or text" is decided. Why
not power-of-two buckets throughout: up to 100 % overhead on long messages for little gain
over Padmé. The 256-byte floor costs bandwidth only on tiny messages.

Encoding: the map header is rewritten as ``map32`` (``0xdf`` + uint32be count + 1), the
original entries follow unchanged, then the key ``"pad"`` (``0xa3 'p' 'a' 'd'``) and the
value as ``bin32`` (``0xc6`` + uint32be n + n zero bytes). Non-minimal headers are valid
MessagePack and make the size exact whatever n is. Versioning is free: a receiver drops
keys it doesn't know (old tenchat clients included, so they read padded messages), and an
unpadded map (an old client's, or a message sent before this) has no ``"pad"`` to drop.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MIN_PADDED", "PadError", "pad", "padded_size", "padme", "unpad"]

MIN_PADDED: Final = 256
_KEY: Final = b"\xa3pad"
_BIN32: Final = b"\xc6"
_MAP32: Final = b"\xdf"
# the most the pad entry and the map32 header add to a map before any zero byte:
# header 5 (replacing at least 1), key 4, bin32 header 5
_WORST_OVERHEAD: Final = 4 + 4 + 5


class PadError(ValueError):
    """The payload is not a MessagePack map."""


def padme(length: int) -> int:
    """Padmé: ``length`` rounded up, keeping only the top ``floor(log2(E)) + 1`` bits free
    where ``E = floor(log2(length))``."""
    if length < 2:
        return length
    e = length.bit_length() - 1
    s = e.bit_length()  # floor(log2(e)) + 1
    mask = (1 << (e - s)) - 1
    return (length + mask) & ~mask


def padded_size(length: int) -> int:
    """The size of the padded map whose unpadded encoding is ``length`` bytes."""
    return max(MIN_PADDED, padme(length + _WORST_OVERHEAD))


def _map_header(payload: bytes) -> tuple[int, int]:
    """(entry count, header length) of a MessagePack map; PadError if it is none."""
    if not payload:
        raise PadError("empty payload")
    first = payload[0]
    if 0x80 <= first <= 0x8F:
        return first & 0x0F, 1
    if first == 0xDE and len(payload) >= 3:
        return int.from_bytes(payload[1:3], "big"), 3
    if first == 0xDF and len(payload) >= 5:
        return int.from_bytes(payload[1:5], "big"), 5
    raise PadError("not a MessagePack map")


def _minimal_header(count: int) -> bytes:
    if count <= 15:
        return bytes([0x80 | count])
    if count <= 0xFFFF:
        return b"\xde" + count.to_bytes(2, "big")
    return _MAP32 + count.to_bytes(4, "big")


def pad(payload: bytes) -> bytes:
    """``payload`` (one MessagePack map without a ``"pad"`` key) padded to
    ``padded_size(len(payload))`` bytes. A map padded already is returned as it is."""
    count, header = _map_header(payload)
    if _pad_entry(payload, count, header) is not None:
        return payload
    body = payload[header:]
    target = padded_size(len(payload))
    zeros = target - (5 + len(body) + len(_KEY) + 5)
    assert zeros >= 0
    return b"".join((_MAP32, (count + 1).to_bytes(4, "big"), body, _KEY, _BIN32,
                     zeros.to_bytes(4, "big"), bytes(zeros)))


def unpad(payload: bytes) -> bytes:
    """The map without its ``"pad"`` entry, with a minimal header (as MessagePack encoders
    write it); an unpadded map comes back unchanged. PadError if it is not a map.

    Receivers need not call it: decoding the map drops the unknown key anyway."""
    count, header = _map_header(payload)
    at = _pad_entry(payload, count, header)
    if at is None:
        return payload
    return _minimal_header(count - 1) + payload[header:at]


def _pad_entry(payload: bytes, count: int, header: int) -> int | None:
    """Where the trailing ``"pad"`` entry starts, or None if the map has none."""
    at = payload.rfind(_KEY + _BIN32)  # the zeros after it can't contain the marker
    if count == 0 or at < header:
        return None
    start = at + len(_KEY) + 5
    size = int.from_bytes(payload[at + len(_KEY) + 1:start], "big")
    if start + size != len(payload) or payload[start:].count(0) != size:
        return None
    return at
