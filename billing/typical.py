"""What a reply of each model typically costs here: the average coins of its paid, finished
replies over the last 30 days, from `LlmUsage` (one aggregate query, cached for a few minutes:
the composer shows it beside its estimate)."""

from __future__ import annotations

import datetime as dt

from django.core.cache import cache
from django.db.models import Avg, Count
from django.utils import timezone

from billing.models import LlmUsage

WINDOW = dt.timedelta(days=30)
CACHE_KEY = "billing:typical-reply-coins"
CACHE_SECONDS = 600


def typical_reply_coins() -> dict[str, int]:
    """Model id -> the average coins of its paid, complete replies in the last 30 days
    (rounded; models without any are left out)."""
    cached: dict[str, int] | None = cache.get(CACHE_KEY)
    if cached is not None:
        return cached
    rows = (
        LlmUsage.objects.filter(
            purpose=LlmUsage.Purpose.REPLY,
            status=LlmUsage.Status.OK,
            byok=False,
            created_at__gte=timezone.now() - WINDOW,
        )
        .order_by()
        .values("model")
        .annotate(average=Avg("coins_charged"), calls=Count("id"))
    )
    typical = {row["model"]: round(row["average"]) for row in rows if row["calls"]}
    cache.set(CACHE_KEY, typical, CACHE_SECONDS)
    return typical
