"""The one clock setting a tenchat process takes: an offset from the system clock.

Pure: this only parses the setting; each side makes its clock from it once, at start,
and passes that clock explicitly (``relay.server.Server(clock=...)``,
``client.service.Client(clock=...)``). In-process tests pass their own clock instead;
tests that run real processes start them with ``TENCHAT_CLOCK_OFFSET_MS`` set (e.g. a
day on, to see stories expire), and restart a relay to move its clock.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import TenchatError

__all__ = ["CLOCK_OFFSET_ENV", "clock_offset"]

CLOCK_OFFSET_ENV = "TENCHAT_CLOCK_OFFSET_MS"


def clock_offset(environ: Mapping[str, str]) -> int:
    """Milliseconds to add to the system clock (0 when unset)."""
    text = environ.get(CLOCK_OFFSET_ENV, "").strip()
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise TenchatError(f"{CLOCK_OFFSET_ENV} must be a whole number of ms, not {text!r}"
                           ) from None
