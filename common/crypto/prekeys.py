"""Prekey upkeep, as pure policy: when to rotate the signed prekey and which private prekeys
to delete. Times are milliseconds since the Unix epoch, always passed in.

**Signed prekey.** A new one is made every ``rotate_ms`` (a week by default) and replaces the
old one on the relay. The old private key is still needed for prekey envelopes made from a
bundle fetched before the rotation (they can sit in the relay's queue for its retention,
30 days by default), so it is kept for ``grace_ms`` after its successor was made, then
deleted: from then on a stolen device can't open those first messages.

**One-time prekeys.** The relay hands out the *lowest* key id it holds first
(docs/protocol.md §4) and the client numbers new keys upwards, so after a
``publish_prekeys`` answered ``otk_count = n`` the relay holds our ``n`` highest ids and
every older one has been handed out. A handed-out key is deleted when the prekey envelope
that used it arrives — but someone draining our prekeys never sends one. Of the handed-out
keys we keep only the newest ``keep_taken`` (first messages still in flight use the most
recently handed-out keys); older ones are deleted. The private keys held are then bounded
by what the relay holds plus ``keep_taken``, however many are drained.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

__all__ = [
    "DAY_MS",
    "PrekeyPolicy",
    "otks_to_delete",
    "spk_rotation_due",
    "spks_to_delete",
]

DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class PrekeyPolicy:
    rotate_ms: int = 7 * DAY_MS  # make a new signed prekey this often
    grace_ms: int = 30 * DAY_MS  # keep a replaced signed prekey this long after its successor
    keep_taken: int = 200  # handed-out one-time prekeys whose first message may still come


def spk_rotation_due(spks: Iterable[tuple[int, int]], now: int, policy: PrekeyPolicy) -> bool:
    """True if ``spks`` ((key id, created at) pairs) is empty or its newest (highest key id)
    signed prekey was made at least ``rotate_ms`` before ``now``."""
    newest = max(spks, default=None)
    return newest is None or now - newest[1] >= policy.rotate_ms


def spks_to_delete(spks: Iterable[tuple[int, int]], now: int, policy: PrekeyPolicy
                   ) -> list[int]:
    """Key ids of replaced signed prekeys past their grace. A signed prekey is replaced when
    the next newer one is made; it goes ``grace_ms`` after that. The newest never goes."""
    ordered = sorted(spks)
    return [key_id for (key_id, _), (_, successor_made) in pairwise(ordered)
            if now - successor_made >= policy.grace_ms]


def otks_to_delete(ids: Iterable[int], relay_count: int, policy: PrekeyPolicy) -> list[int]:
    """Key ids of one-time prekeys to delete, given every id we hold and the relay's count
    of ours from a ``prekey_status`` answer: all but the ``relay_count`` highest (still on
    the relay) and the ``keep_taken`` highest of the rest (handed out recently)."""
    ordered = sorted(set(ids), reverse=True)
    keep = max(relay_count, 0) + max(policy.keep_taken, 0)
    return sorted(ordered[keep:])
