"""The clock tool: the current date and time in a given time zone (an IANA name)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

from tools.registry import REGISTRY, Tool, ToolError


def now_in(zone_name: str, *, now: dt.datetime | None = None) -> str:
    """ "2026-12-07 16:20:31 (Monday), Europe/Lisbon, WET, UTC+00:00"."""
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ToolError(
            f"Unknown time zone {zone_name[:60]!r}: use an IANA name such as Europe/Lisbon, "
            "America/New_York or UTC."
        ) from None
    local = (now or timezone.now()).astimezone(zone)
    offset = local.strftime("%z")
    return (
        f"{local:%Y-%m-%d %H:%M:%S} ({local:%A}), {zone_name}, {local.tzname()}, "
        f"UTC{offset[:3]}:{offset[3:]}"
    )


async def _run(arguments: dict[str, Any]) -> str:
    return now_in(arguments.get("time_zone") or "UTC")


CLOCK = REGISTRY.register(
    Tool(
        name="current_time",
        description=(
            "The current date, weekday and time in a time zone (an IANA name such as "
            "Europe/Lisbon; UTC when none is given). Use it whenever the answer depends on "
            "today's date or the time."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "time_zone": {
                    "type": "string",
                    "description": "An IANA time zone name, such as Asia/Tokyo.",
                    "maxLength": 64,
                }
            },
            "additionalProperties": False,
        },
        run=_run,
    )
)
