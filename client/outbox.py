"""The outbox's rules, without I/O: in what order queued content is sealed and sent, and
what each answer of the relay does to it.

Two small state machines the edge (``Client.encrypt_pending``, ``Client.flush_outbox``)
feeds with what happened — an envelope made, a peer's session refused, the relay's answer
to a send — and asks what to do next. The cache, the socket and the encryption stay at
the edge, so the rules are tested by calling these (tests/client/test_outbox_rules.py);
tests/client/test_outbox_stateful.py checks the whole outbox across crashes with a relay.

- **Sealing** (content queued before a session with its peer existed): oldest first; a
  peer whose session can't be started keeps all its later items back, in order, while the
  other peers' items go on.
- **Flushing**: every sealed item is sent (up to ``SEND_WINDOW`` at once); an item the relay
  stored leaves the outbox; a group send refused as ``forbidden`` (we were removed) is
  dropped and the group marked left; any other refusal leaves the item queued for the
  next flush and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ..common.errors import ErrorCode, TenchatError
from .errors import GroupError

__all__ = ["DIRECT", "GROUP", "Item", "Sealing", "Flush", "WAITING"]

DIRECT, GROUP = "direct", "group"  # outbox.kind
WAITING = "waiting for an earlier message"


class Item(NamedTuple):
    """A sealed outbox item, ready to send (cache.outbox.items())."""

    msg_id: bytes
    peer: bytes  # a user id, or a group id for kind GROUP
    envelope: bytes
    kind: str
    expires_at: int
    written: bool  # a message the user wrote (an outgoing row), not automatic content


@dataclass(slots=True)
class Sealing:
    """Which deferred items to encrypt now, in queue order; why the others wait."""

    failed: dict[bytes, TenchatError] = field(default_factory=dict)  # msg id -> why not
    _stuck: set[bytes] = field(default_factory=set)  # peers with a failed item

    def should_seal(self, msg_id: bytes, peer: bytes) -> bool:
        """Seal this one now? No if an earlier item to the same peer failed (their
        messages stay in order): it is recorded as waiting."""
        if peer in self._stuck:
            self.failed[msg_id] = TenchatError(WAITING)
            return False
        return True

    def could_not_seal(self, msg_id: bytes, peer: bytes, why: TenchatError) -> None:
        """No session could be started (no prekeys, a bundle not signed by the peer…)."""
        self.failed[msg_id] = why
        self._stuck.add(peer)


@dataclass(slots=True)
class Flush:
    """One flush: the items sent and what the relay answered to each."""

    items: list[Item]
    stored: list[Item] = field(default_factory=list)  # the relay has them: done
    left_groups: list[Item] = field(default_factory=list)  # refused: we're no longer in
    errors: list[BaseException] = field(default_factory=list)  # the rest stay queued

    def answered(self, item: Item, error: TenchatError | None = None) -> None:
        """The relay's answer to one send: None if stored, else the refusal."""
        if error is None:
            self.stored.append(item)
        elif item.kind == GROUP and getattr(error, "code", None) == ErrorCode.FORBIDDEN:
            # Removed from the group (the relay no longer lets us post): nothing more goes
            # there; the message stays here, unsent.
            self.left_groups.append(item)
            self.errors.append(GroupError("you are no longer a member of this group"))
        else:
            self.errors.append(error)

    def error(self) -> BaseException | None:
        """What to raise once the results are stored: the first refusal, if any."""
        return self.errors[0] if self.errors else None
