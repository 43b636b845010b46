"""The operators' dashboard (an admin page): replies, tokens, coins and errors per day and per
provider and model over a chosen range, the top spenders, error rates by code and time to first
token percentiles per model. Three aggregate queries over `LlmUsage` (and one for the top
spenders' names), whatever the range; `bench/dashboard.py` times them on a million rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from billing.models import LlmUsage

# Nearest-rank percentiles of time to first token shown per model.
PERCENTILES = (50, 90, 99)
TOP_SPENDERS = 10


@dataclass(frozen=True, slots=True)
class Totals:
    calls: int = 0
    replies: int = 0
    titles: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    coins: int = 0
    cost_usd: Decimal = Decimal(0)

    @property
    def error_percent(self) -> float:
        return round(100 * self.errors / self.calls, 2) if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class Day:
    day: dt.date
    totals: Totals


@dataclass(frozen=True, slots=True)
class ModelRow:
    provider: str
    model: str
    totals: Totals
    # Time to first token (ms) at each of PERCENTILES, of its replies that streamed text.
    ttft: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Spender:
    user_id: int
    username: str
    calls: int
    coins: int


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    count: int
    # Of every call in the range.
    percent: float


@dataclass(frozen=True, slots=True)
class Dashboard:
    start: dt.date
    end: dt.date
    totals: Totals
    days: list[Day]
    models: list[ModelRow]
    spenders: list[Spender]
    errors: list[ErrorCode]


def _aggregates() -> dict[str, Any]:
    return {
        "calls": Count("id"),
        "replies": Count("id", filter=Q(purpose=LlmUsage.Purpose.REPLY)),
        "titles": Count("id", filter=Q(purpose=LlmUsage.Purpose.TITLE)),
        "errors": Count("id", filter=Q(status=LlmUsage.Status.ERROR)),
        "tokens_in": Coalesce(Sum("input_tokens"), 0),
        "tokens_out": Coalesce(Sum("output_tokens"), 0),
        "coins": Coalesce(Sum("coins_charged"), 0),
        "cost": Coalesce(Sum("cost_usd"), Decimal(0)),
    }


def _totals(row: dict[str, Any]) -> Totals:
    return Totals(
        calls=row["calls"],
        replies=row["replies"],
        titles=row["titles"],
        errors=row["errors"],
        input_tokens=int(row["tokens_in"]),
        output_tokens=int(row["tokens_out"]),
        coins=int(row["coins"]),
        cost_usd=Decimal(row["cost"]),
    )


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    zone = timezone.get_current_timezone()
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=zone),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone),
    )


def calls_in(
    start: dt.date, end: dt.date, *, provider: str = "", model: str = ""
) -> QuerySet[LlmUsage]:
    """The provider calls made from `start` to `end` (days in the site's time zone, both
    included), of one provider or model if given."""
    since, until = _bounds(start, end)
    calls = LlmUsage.objects.filter(created_at__gte=since, created_at__lt=until).order_by()
    if provider:
        calls = calls.filter(provider=provider)
    if model:
        calls = calls.filter(model=model)
    return calls


def dashboard(start: dt.date, end: dt.date, *, provider: str = "", model: str = "") -> Dashboard:
    """Everything the page shows, in three aggregate queries, each one pass over the range's
    calls: their figures by day, model and error code (summed here into each table), the top
    spenders, and the time to first token of each model's replies, counted by value."""
    calls = calls_in(start, end, provider=provider, model=model)
    with transaction.atomic(), _roomy_aggregates():
        groups = list(
            calls.annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
            .values("day", "provider", "model", "error_code")
            .annotate(**_aggregates())
        )
        spenders = _top_spenders(calls)
        ttft = ttft_percentiles(calls)
    by_day: dict[dt.date, list[Totals]] = {}
    by_model: dict[tuple[str, str], list[Totals]] = {}
    by_code: dict[str, int] = {}
    for row in groups:
        totals = _totals(row)
        by_day.setdefault(row["day"], []).append(totals)
        by_model.setdefault((row["provider"], row["model"]), []).append(totals)
        if totals.errors:
            code = row["error_code"] or "unknown"
            by_code[code] = by_code.get(code, 0) + totals.errors
    # Every day of the range, those without a call included (a chart's gaps are days too).
    days = [
        Day(day=day, totals=_sum(by_day.get(day, [])))
        for day in (start + dt.timedelta(days=n) for n in range((end - start).days + 1))
    ]
    everything = _sum(day.totals for day in days)
    models = sorted(
        (
            ModelRow(provider=p, model=m, totals=_sum(parts), ttft=ttft.get(m, {}))
            for (p, m), parts in by_model.items()
        ),
        key=lambda row: (-row.totals.coins, -row.totals.calls, row.model),
    )
    errors = [
        ErrorCode(code=code, count=count, percent=round(100 * count / everything.calls, 2))
        for code, count in sorted(by_code.items(), key=lambda item: (-item[1], item[0]))
    ]
    return Dashboard(
        start=start,
        end=end,
        totals=everything,
        days=days,
        models=models,
        spenders=spenders,
        errors=errors,
    )


@contextlib.contextmanager
def _roomy_aggregates() -> Iterator[None]:
    """On PostgreSQL, room for the aggregates to hash in memory and no JIT compile, for this
    transaction only (its planner cannot tell a few thousand groups from a hundred thousand,
    and with the default 4 MB it sorts a million rows on disk instead: twice the time)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute("SET LOCAL jit = off")
    yield


def _top_spenders(calls: QuerySet[LlmUsage]) -> list[Spender]:
    """The people who spent the most coins in the range (grouped by id alone, their names read
    after for the few shown)."""
    top = list(
        calls.filter(coins_charged__gt=0)
        .values("user_id")
        # COUNT(*), not of a column: the index holds all this query reads.
        .annotate(calls=Count("*"), coins=Sum("coins_charged"))
        .order_by("-coins", "user_id")[:TOP_SPENDERS]
    )
    names = dict(
        get_user_model()
        .objects.filter(pk__in=[row["user_id"] for row in top])
        .values_list("pk", "username")
    )
    return [
        Spender(
            user_id=row["user_id"],
            username=names.get(row["user_id"], "?"),
            calls=row["calls"],
            coins=int(row["coins"]),
        )
        for row in top
    ]


def ttft_percentiles(calls: QuerySet[LlmUsage]) -> dict[str, dict[int, int]]:
    """Model -> {percentile: ms}: exact nearest-rank percentiles (the smallest time with at
    least that share of the model's replies at or below it) of time to first token, over the
    replies that streamed text. One query counts each model's replies by their time (a few
    thousand distinct values: times are whole milliseconds), and the ranks are found here."""
    counted = (
        calls.filter(purpose=LlmUsage.Purpose.REPLY, time_to_first_token_ms__isnull=False)
        .values("model", "time_to_first_token_ms")
        .annotate(count=Count("*"))
    )
    histograms: dict[str, list[tuple[int, int]]] = {}
    for row in counted:
        histograms.setdefault(row["model"], []).append(
            (row["time_to_first_token_ms"], row["count"])
        )
    out: dict[str, dict[int, int]] = {}
    for name, histogram in histograms.items():
        histogram.sort()
        total = sum(count for _, count in histogram)
        # The rank of each percentile: ceil(p * n / 100), in whole numbers.
        ranks = {p: (total * p + 99) // 100 for p in PERCENTILES}
        seen, found = 0, {}
        for value, count in histogram:
            seen += count
            for p, rank in ranks.items():
                if p not in found and seen >= rank:
                    found[p] = value
            if len(found) == len(ranks):
                break
        out[name] = found
    return out


def _sum(parts: Any) -> Totals:
    total = Totals()
    for part in parts:
        total = Totals(
            calls=total.calls + part.calls,
            replies=total.replies + part.replies,
            titles=total.titles + part.titles,
            errors=total.errors + part.errors,
            input_tokens=total.input_tokens + part.input_tokens,
            output_tokens=total.output_tokens + part.output_tokens,
            coins=total.coins + part.coins,
            cost_usd=total.cost_usd + part.cost_usd,
        )
    return total
