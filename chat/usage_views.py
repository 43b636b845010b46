"""The usage page (`/usage/`) and its CSV: a person's own spending, line by line and in totals,
from billing/usage.py, with the conversations' titles and links (which billing does not know)."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing import usage
from billing.services import balance_of
from chat.models import Conversation
from chatsite.charts import bar_chart, day_bars
from providers.catalogue import find_model

LINES_PER_PAGE = 50
CHART_DAYS = 30

_KIND_LABELS = {
    "reply": "Reply",
    "title": "Title",
    "grant": "Coins added",
    "refund": "Refund",
    "adjustment": "Deduction",
}


@dataclass(frozen=True, slots=True)
class ShownLine:
    line: usage.Line
    label: str
    model_name: str
    # The conversation's title and whether it can be opened (it may have been deleted).
    conversation_title: str
    conversation_open: bool


def _model_name(model_id: str) -> str:
    model = find_model(model_id)
    return model.display_name if model else model_id


def _shown(user_id: int, lines: list[usage.Line]) -> list[ShownLine]:
    ids = {line.conversation_id for line in lines if line.conversation_id}
    titles = dict(
        Conversation.objects.filter(
            owner_id=user_id, pk__in=ids, deleted_at__isnull=True
        ).values_list("pk", "title")
    )
    return [
        ShownLine(
            line=line,
            label=_KIND_LABELS.get(line.kind, line.kind.capitalize()),
            model_name=_model_name(line.model) if line.model else "",
            conversation_title=titles.get(line.conversation_id or 0, ""),
            conversation_open=(line.conversation_id or 0) in titles,
        )
        for line in lines
    ]


def _chart(days: list[usage.DayTotal]) -> str:
    # Every fifth day is labelled, so the axis stays legible on a phone.
    bars = day_bars(
        [(day.day, day.coins) for day in days], units=("coin", "coins"), every=5, last=True
    )
    spent = sum(day.coins for day in days)
    return bar_chart(
        bars,
        title=f"Coins spent per day, last {len(days)} days",
        description=f"{spent:,} coins in all; the busiest day "
        + (
            f"{max(days, key=lambda d: d.coins).day:%B %-d} ({max(d.coins for d in days):,} coins)."
            if spent
            else "none: nothing was spent."
        ),
        chart_id="spending-chart",
    )


@login_required
@require_GET
def usage_page(request: HttpRequest) -> HttpResponse:
    """The person's own usage."""
    return _usage(request, int(request.user.pk), person=None)  # type: ignore[arg-type]


@staff_member_required
@require_GET
def person_usage(request: HttpRequest, user_id: int) -> HttpResponse:
    """Someone's usage page as its person sees it, for the admins (linked from their coin
    account); their conversations open in the admin."""
    person = get_object_or_404(get_user_model(), pk=user_id)
    return _usage(request, user_id, person=person)


def _usage(request: HttpRequest, user_id: int, *, person: Any) -> HttpResponse:
    paginator = Paginator(usage.lines(user_id), LINES_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    lines = usage.latest_models(user_id, [usage.line_of(row) for row in page.object_list])
    days = usage.last_days(user_id, days=CHART_DAYS)
    models = usage.per_model(user_id)
    return render(
        request,
        "chat/usage.html",
        {
            "page": page,
            "lines": _shown(user_id, lines),
            "chart": _chart(days),
            "days": [day for day in reversed(days) if day.calls],
            "chart_days": CHART_DAYS,
            "models": [(total, _model_name(total.model)) for total in models],
            "spent": sum(total.coins for total in models),
            "balance": balance_of(user_id=user_id),
            "held": usage.held(user_id),
            # Set when an admin looks at someone's page.
            "person": person,
            "csv_url": reverse("person-usage-csv", args=[user_id])
            if person
            else reverse("usage-csv"),
        },
    )


class _Echo:
    """A file-like object whose `write` hands the line back (csv writes into it)."""

    def write(self, value: str) -> str:
        return value


CSV_COLUMNS = [
    "time (UTC)",
    "kind",
    "conversation",
    "conversation title",
    "model",
    "provider calls",
    "own key",
    "input tokens",
    "output tokens",
    "coins",
    "reason",
]


CSV_CHUNK = 1000


async def _csv_stream(user_id: int) -> AsyncIterator[str]:
    """The CSV, a chunk of lines per trip to the database thread (never all in memory)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    offset = 0
    while True:
        rows = await database_sync_to_async(_csv_chunk)(user_id, offset)
        for row in rows:
            yield row
        if len(rows) < CSV_CHUNK:
            return
        offset += CSV_CHUNK


def _csv_chunk(user_id: int, offset: int) -> list[str]:
    writer = csv.writer(_Echo())
    chunk = [usage.line_of(row) for row in usage.lines(user_id)[offset : offset + CSV_CHUNK]]
    out = []
    for shown in _shown(user_id, usage.latest_models(user_id, chunk)):
        line = shown.line
        out.append(
            writer.writerow(
                [
                    line.at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    shown.label,
                    line.conversation_id or "",
                    _csv_safe(shown.conversation_title),
                    line.model,
                    line.calls or "",
                    "yes" if line.byok else "",
                    line.input_tokens,
                    line.output_tokens,
                    line.coins,
                    _csv_safe(line.reason),
                ]
            )
        )
    return out


def _csv_safe(text: str) -> str:
    """Text a spreadsheet would run as a formula (=, +, -, @ first) is quoted as text."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@login_required
@require_GET
async def usage_csv(request: HttpRequest) -> StreamingHttpResponse:
    """Every line of the person's, as the page shows them, streamed (an async view: the site
    is served by ASGI)."""
    user = await request.auser()
    assert user.pk is not None, "login_required"
    return _csv_response(int(user.pk))


@staff_member_required
@require_GET
async def person_usage_csv(request: HttpRequest, user_id: int) -> StreamingHttpResponse:
    """Someone's CSV, for the admins."""
    if not await get_user_model().objects.filter(pk=user_id).aexists():
        raise Http404("No such person.")
    return _csv_response(user_id)


def _csv_response(user_id: int) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_csv_stream(user_id), content_type="text/csv; charset=utf-8")
    name = f"usage-{timezone.localdate():%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
