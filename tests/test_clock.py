"""common.clock: the one clock setting (TENCHAT_CLOCK_OFFSET_MS) both sides parse."""

from __future__ import annotations

import pytest

from tenchat.common.clock import CLOCK_OFFSET_ENV, clock_offset
from tenchat.common.errors import TenchatError


@pytest.mark.parametrize(("value", "offset"), [
    (None, 0), ("", 0), ("  ", 0), ("86400000", 86_400_000), (" -5 ", -5),
])
def test_the_offset_is_whole_milliseconds_and_zero_when_unset(value: str | None,
                                                              offset: int) -> None:
    environ = {} if value is None else {CLOCK_OFFSET_ENV: value}
    assert clock_offset(environ) == offset


@pytest.mark.parametrize("value", ["1.5", "1d", "0x10"])
def test_anything_else_is_an_error_naming_the_setting(value: str) -> None:
    with pytest.raises(TenchatError, match=CLOCK_OFFSET_ENV):
        clock_offset({CLOCK_OFFSET_ENV: value})
