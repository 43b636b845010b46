"""The clock tool: the date and time in a named time zone, summer time included."""

from __future__ import annotations

import datetime as dt

import pytest

from tools.clock import CLOCK, now_in
from tools.registry import ToolError, run_tool

WINTER = dt.datetime(2026, 12, 7, 16, 20, 31, tzinfo=dt.UTC)
SUMMER = dt.datetime(2026, 7, 1, 12, 0, 0, tzinfo=dt.UTC)


def test_the_time_in_a_zone_with_its_offset() -> None:
    assert now_in("Europe/Lisbon", now=WINTER) == (
        "2026-12-07 16:20:31 (Monday), Europe/Lisbon, WET, UTC+00:00"
    )
    assert now_in("Europe/Lisbon", now=SUMMER).endswith("WEST, UTC+01:00")
    assert now_in("Asia/Kolkata", now=WINTER).startswith("2026-12-07 21:50:31 (Monday)")
    assert now_in("America/New_York", now=WINTER).endswith("EST, UTC-05:00")


@pytest.mark.parametrize("bad", ["Mars/Olympus", "../../etc/passwd", "", "UTC+5", "x" * 500])
def test_an_unknown_zone_is_explained(bad: str) -> None:
    with pytest.raises(ToolError, match="IANA"):
        now_in(bad, now=WINTER)


async def test_as_a_tool_call() -> None:
    utc = await run_tool(CLOCK, {})
    assert not utc.is_error and ", UTC, UTC, UTC+00:00" in utc.content
    wrong = await run_tool(CLOCK, {"time_zone": "Nowhere/Land"})
    assert wrong.is_error and "Unknown time zone" in wrong.content
