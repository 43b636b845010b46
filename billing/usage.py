"""A person's spending as they read it (the usage page, its CSV): one line per reply or title,
its provider calls taken together, and one per grant, refund or adjustment, with its reason;
totals per model and per day.

Every figure is summed from `LlmUsage` and the ledger, never worked out again: a reply's coins
are its calls' `coins_charged` (what its captures took), a grant's its entry's amount. So the
lines' coins add up to the ledger's movements, holds and releases aside (they cancel once a
reply is billed; `held` is what replies being written hold meanwhile). A test holds that on
random histories (tests/billing/test_usage_lines.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import (
    BigIntegerField,
    CharField,
    Count,
    F,
    IntegerField,
    Max,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone

from billing.models import LedgerEntry, LlmUsage
from billing.services import unreleased_holds

# The ledger's kinds a person sees as lines of their own (holds, releases and captures are a
# reply's, shown as that reply's one line).
MOVEMENT_KINDS = (
    LedgerEntry.Kind.GRANT,
    LedgerEntry.Kind.REFUND,
    LedgerEntry.Kind.ADJUSTMENT,
)
_COLUMNS = (
    "at",
    "kind",
    "conversation_id",
    "message_id",
    "model",
    "byok",
    "calls",
    "input_tokens",
    "output_tokens",
    "coins",
    "reason",
)


# What each side of the union selects, in `_COLUMNS`' order (annotations may not reuse a
# field's name, hence `line_model` and the like).
_SELECTED = ("at", "kind", "conversation_id", "message_id", "line_model", "own_key", "calls",
             "tokens_in", "tokens_out", "coins", "reason")  # fmt: skip
_SELECTED_MOVEMENTS = ("at", "line_kind", *_SELECTED[2:])


@dataclass(frozen=True, slots=True)
class Line:
    at: dt.datetime
    # "reply" or "title" (provider calls), or a ledger kind: "grant", "refund", "adjustment".
    kind: str
    conversation_id: int | None
    message_id: int | None
    model: str
    byok: bool
    calls: int
    input_tokens: int
    output_tokens: int
    # What it did to the balance: a reply's charge is negative, a grant positive.
    coins: int
    reason: str


@dataclass(frozen=True, slots=True)
class ModelTotal:
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    coins: int


@dataclass(frozen=True, slots=True)
class DayTotal:
    day: dt.date
    calls: int
    input_tokens: int
    output_tokens: int
    coins: int


def _calls(user_id: int) -> QuerySet[LlmUsage]:
    return LlmUsage.objects.filter(user_id=user_id)


def lines(user_id: int) -> QuerySet[LlmUsage, tuple[Any, ...]]:
    """Every line of the person's, newest first, as rows of `_COLUMNS` (one query, which a
    paginator slices): a reply's or a title's calls grouped, then the ledger's grants, refunds
    and adjustments. `line_of` makes a row a `Line`."""
    zero = Value(0, output_field=BigIntegerField())
    calls = (
        _calls(user_id)
        .order_by()
        .values("conversation_id", "message_id", "purpose")
        .annotate(
            at=Max("created_at"),
            kind=F("purpose"),
            # The model of a reply retried with another is its latest call's (`latest_models`).
            line_model=Max("model"),
            own_key=Max(Cast("byok", IntegerField())),
            calls=Count("id"),
            tokens_in=Cast(Sum("input_tokens"), BigIntegerField()),
            tokens_out=Cast(Sum("output_tokens"), BigIntegerField()),
            coins=Cast(-Sum("coins_charged"), BigIntegerField()),
            reason=Value("", output_field=CharField()),
        )
        .values_list(*_SELECTED)
    )
    movements = (
        LedgerEntry.objects.filter(account__user_id=user_id, kind__in=MOVEMENT_KINDS)
        .order_by()
        .annotate(
            at=F("created_at"),
            line_kind=F("kind"),
            line_model=Value("", output_field=CharField()),
            own_key=Value(0, output_field=IntegerField()),
            calls=Value(0, output_field=IntegerField()),
            tokens_in=zero,
            tokens_out=zero,
            coins=Cast(F("amount"), BigIntegerField()),
        )
        .values_list(*_SELECTED_MOVEMENTS)
    )
    # A total order (lines equal in all of these are alike), so that pages and the CSV's chunks,
    # cut by offset, neither repeat nor skip a line.
    combined: QuerySet[LlmUsage, tuple[Any, ...]] = calls.union(movements, all=True).order_by(
        "-at", "-kind", "-message_id", "-conversation_id", "-coins", "reason"
    )
    return combined


def line_of(row: tuple[object, ...]) -> Line:
    values = dict(zip(_COLUMNS, row, strict=True))
    return Line(
        at=_aware(values["at"]),
        kind=str(values["kind"]),
        conversation_id=_int_or_none(values["conversation_id"]),
        message_id=_int_or_none(values["message_id"]),
        model=str(values["model"] or ""),
        byok=bool(values["byok"]),
        calls=int(values["calls"] or 0),  # type: ignore[call-overload]
        input_tokens=int(values["input_tokens"] or 0),  # type: ignore[call-overload]
        output_tokens=int(values["output_tokens"] or 0),  # type: ignore[call-overload]
        coins=int(values["coins"] or 0),  # type: ignore[call-overload]
        reason=str(values["reason"] or ""),
    )


def latest_models(user_id: int, shown: list[Line]) -> list[Line]:
    """`shown` with each reply's model its latest call's (a reply retried with another model
    was last written by that one)."""
    ids = [line.message_id for line in shown if line.calls > 1 and line.message_id]
    if not ids:
        return shown
    latest: dict[tuple[int | None, str], str] = {}
    rows = (
        _calls(user_id)
        .filter(message_id__in=ids)
        .order_by("message_id", "purpose", "-id")
        .values_list("message_id", "purpose", "model")
    )
    for message_id, purpose, model in rows:
        latest.setdefault((message_id, purpose), model)
    out = []
    for line in shown:
        model = latest.get((line.message_id, line.kind), line.model)
        out.append(line if model == line.model else _with_model(line, model))
    return out


def _with_model(line: Line, model: str) -> Line:
    fields = {name: getattr(line, name) for name in Line.__slots__}
    fields["model"] = model
    return Line(**fields)


def per_model(user_id: int) -> list[ModelTotal]:
    """Calls, tokens and coins spent per model, the most spent first."""
    rows = (
        _calls(user_id)
        .order_by()
        .values("model")
        .annotate(
            calls=Count("id"),
            tokens_in=Coalesce(Sum("input_tokens"), 0),
            tokens_out=Coalesce(Sum("output_tokens"), 0),
            coins=Coalesce(Sum("coins_charged"), 0),
        )
        .order_by("-coins", "-calls", "model")
    )
    return [
        ModelTotal(
            model=row["model"],
            calls=row["calls"],
            input_tokens=int(row["tokens_in"]),
            output_tokens=int(row["tokens_out"]),
            coins=int(row["coins"]),
        )
        for row in rows
    ]


def per_day(user_id: int, *, since: dt.date | None = None) -> list[DayTotal]:
    """Calls, tokens and coins spent per day (the site's time zone), newest first."""
    calls = _calls(user_id)
    if since is not None:
        start = dt.datetime.combine(since, dt.time.min, tzinfo=timezone.get_current_timezone())
        calls = calls.filter(created_at__gte=start)
    rows = (
        calls.order_by()
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(
            calls=Count("id"),
            tokens_in=Coalesce(Sum("input_tokens"), 0),
            tokens_out=Coalesce(Sum("output_tokens"), 0),
            coins=Coalesce(Sum("coins_charged"), 0),
        )
        .order_by("-day")
    )
    return [
        DayTotal(
            day=row["day"],
            calls=row["calls"],
            input_tokens=int(row["tokens_in"]),
            output_tokens=int(row["tokens_out"]),
            coins=int(row["coins"]),
        )
        for row in rows
    ]


def last_days(user_id: int, *, days: int, today: dt.date | None = None) -> list[DayTotal]:
    """Coins spent on each of the last `days` days, oldest first, days without any included."""
    end = today or timezone.localdate()
    start = end - dt.timedelta(days=days - 1)
    spent = {total.day: total for total in per_day(user_id, since=start)}
    return [
        spent.get(day, DayTotal(day=day, calls=0, input_tokens=0, output_tokens=0, coins=0))
        for day in (start + dt.timedelta(days=n) for n in range(days))
    ]


def held(user_id: int) -> int:
    """Coins held for replies and titles being written (their holds not yet released)."""
    holds = unreleased_holds().filter(account__user_id=user_id)
    return -int(holds.aggregate(total=Sum("amount"))["total"] or 0)


def _aware(value: object) -> dt.datetime:
    assert isinstance(value, dt.datetime)
    return value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]
