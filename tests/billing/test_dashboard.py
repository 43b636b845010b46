"""The usage dashboard in the admin: its figures over a range, its percentiles, its page."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from billing import dashboard
from billing.models import LlmUsage

pytestmark = pytest.mark.django_db


def _call(user: Any, days_ago: int = 0, **fields: Any) -> LlmUsage:
    defaults = {"provider": "anthropic", "model": "claude-sonnet-5-5", "status": "ok"}
    call = LlmUsage.objects.create(user=user, **(defaults | fields))
    if days_ago:
        LlmUsage.objects.filter(pk=call.pk).update(
            created_at=timezone.now() - dt.timedelta(days=days_ago)
        )
    return call


@pytest.fixture
def calls(alice: Any, bob: Any) -> None:
    for ms in range(1, 101):  # 100 replies of alice's, first tokens 10 ms .. 1000 ms
        _call(alice, time_to_first_token_ms=ms * 10, input_tokens=10, output_tokens=5,
              coins_charged=1)  # fmt: skip
    _call(bob, model="gpt-5.5", provider="openai", coins_charged=50, input_tokens=100)
    _call(bob, model="gpt-5.5", provider="openai", status="error", error_code="overloaded")
    _call(bob, model="gpt-5.5", provider="openai", status="error", error_code="timeout")
    _call(bob, model="gpt-5.5", provider="openai", status="error", error_code="overloaded")
    _call(alice, purpose="title", model="claude-haiku-5-5", coins_charged=1, days_ago=3)
    _call(alice, coins_charged=999, days_ago=45)  # outside the last 30 days


def test_the_dashboard_sums_the_range_by_day_model_code_and_person(
    calls: None, alice: Any, bob: Any
) -> None:
    today = timezone.localdate()
    board = dashboard.dashboard(today - dt.timedelta(days=29), today)
    assert (board.totals.calls, board.totals.replies, board.totals.titles) == (105, 104, 1)
    assert (board.totals.errors, board.totals.coins) == (3, 100 + 50 + 1)
    assert board.totals.input_tokens == 100 * 10 + 100
    # Every day of the range, those without calls too.
    assert [day.day for day in board.days] == [
        today - dt.timedelta(days=n) for n in range(29, -1, -1)
    ]
    busy = [(d.day, d.totals.calls, d.totals.coins) for d in board.days if d.totals.calls]
    assert busy == [(today - dt.timedelta(days=3), 1, 1), (today, 104, 150)]
    by_model = {row.model: row for row in board.models}
    assert [row.model for row in board.models] == [
        "claude-sonnet-5-5",
        "gpt-5.5",
        "claude-haiku-5-5",
    ]
    assert by_model["gpt-5.5"].totals.errors == 3 and by_model["gpt-5.5"].ttft == {}
    # Nearest-rank percentiles of the 100 first-token times.
    assert by_model["claude-sonnet-5-5"].ttft == {50: 500, 90: 900, 99: 990}
    assert [(s.username, s.coins, s.calls) for s in board.spenders] == [
        ("alice", 101, 101),
        ("bob", 50, 1),
    ]
    assert [(e.code, e.count, e.percent) for e in board.errors] == [
        ("overloaded", 2, round(200 / 105, 2)),
        ("timeout", 1, round(100 / 105, 2)),
    ]
    assert board.totals.error_percent == round(300 / 105, 2)


def test_the_dashboard_narrows_to_one_model_or_provider(calls: None) -> None:
    today = timezone.localdate()
    start = today - dt.timedelta(days=60)
    only = dashboard.dashboard(start, today, model="claude-sonnet-5-5")
    assert (only.totals.calls, only.totals.coins) == (101, 100 + 999)
    assert dashboard.dashboard(start, today, provider="openai").totals.calls == 4


def test_percentiles_are_exact_nearest_rank_with_repeated_times(alice: Any) -> None:
    for ms in [100] * 5 + [200] * 4 + [900]:
        _call(alice, time_to_first_token_ms=ms)
    _call(alice, time_to_first_token_ms=None, status="error")  # no text: not counted
    today = timezone.localdate()
    [row] = dashboard.dashboard(today, today).models
    assert row.ttft == {50: 100, 90: 200, 99: 900}


def test_the_dashboard_page_shows_charts_and_tables_to_admins(
    admin_client: Client, calls: None
) -> None:
    index = admin_client.get("/admin/").content.decode()
    assert 'href="/admin/billing/llmusage/dashboard/"' in index
    page = admin_client.get("/admin/billing/llmusage/dashboard/").content.decode()
    assert page.count('role="img"') == 5  # replies, tokens, coins, errors per day; per model
    assert "Replies per day" in page and "Coins per model" in page
    assert re.search(r"<strong>105</strong> provider calls", page)
    models = page.split('id="dashboard-models"', 1)[1].split("</table>", 1)[0]
    assert ">500 ms<" in models and ">990 ms<" in models
    spenders = page.split('id="dashboard-spenders"', 1)[1].split("</table>", 1)[0]
    assert spenders.index("alice") < spenders.index("bob") and "/usage/people/" in spenders
    errors = page.split('id="dashboard-errors"', 1)[1].split("</table>", 1)[0]
    assert "overloaded" in errors and "1.9%" in errors
    narrowed = admin_client.get(
        "/admin/billing/llmusage/dashboard/?start=2020-01-01&end=2020-01-31&model=gpt-5.5"
    ).content.decode()
    assert "<strong>0</strong> provider calls" in narrowed and "No errors in this range" in narrowed


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("start=2026-02-01&end=2026-01-01", "starts after it ends"),
        ("start=2020-01-01&end=2026-01-01", "at most 366 days"),
        ("start=someday", "Enter a valid date"),
        ("model=no-such-model", "Select a valid choice"),
    ],
)
def test_a_bad_range_is_named_and_nothing_is_counted(
    admin_client: Client, calls: None, query: str, problem: str
) -> None:
    page = admin_client.get(f"/admin/billing/llmusage/dashboard/?{query}").content.decode()
    assert problem in page and 'id="dashboard-totals"' not in page


def test_people_who_are_not_admins_cannot_see_the_dashboard(client: Client, alice: Any) -> None:
    client.force_login(alice)
    response = client.get("/admin/billing/llmusage/dashboard/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
