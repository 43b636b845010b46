"""The usage page (`/usage/`) and its CSV: a person's own lines, totals per model and per day,
a chart of the last 30 days, pages, and a download."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

import pytest
from django.test import AsyncClient, Client
from django.utils import timezone

from billing import services
from billing.models import LlmUsage
from chat import usage_views
from chat.models import Conversation

pytestmark = pytest.mark.django_db


def _call(user: Any, **fields: Any) -> LlmUsage:
    defaults = {"provider": "anthropic", "model": "claude-sonnet-5-5", "status": "ok"}
    return LlmUsage.objects.create(user=user, **(defaults | fields))


@pytest.fixture
def history(alice: Any, bob: Any) -> Conversation:
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    conversation.title = "Sourdough at home"
    conversation.save()
    # A reply tried twice (its second call with another model), its title, an own-key reply.
    _call(alice, conversation_id=conversation.pk, message_id=10, coins_charged=0,
          status="error", error_code="overloaded")  # fmt: skip
    _call(alice, conversation_id=conversation.pk, message_id=10, model="claude-opus-5-5",
          input_tokens=1200, output_tokens=300, coins_charged=12)  # fmt: skip
    _call(alice, conversation_id=conversation.pk, message_id=10, purpose="title",
          model="claude-haiku-5-5", input_tokens=60, output_tokens=6, coins_charged=1)  # fmt: skip
    _call(alice, conversation_id=conversation.pk, message_id=12, provider="openai",
          model="gpt-5.5", byok=True, input_tokens=5, output_tokens=7)  # fmt: skip
    gone = _call(alice, conversation_id=999, message_id=20, coins_charged=3)
    services.coins_adjust(user_id=alice.pk, amount=250, reason="Beta tester",
                          reference="beta:alice", created_by_id=None)  # fmt: skip
    services.coins_refund(usage=gone, reason="The reply was cut short", created_by_id=None)
    _call(bob, message_id=30, coins_charged=40, model="gpt-5.5", provider="openai")
    return conversation


def _rows(page: str) -> list[str]:
    table = page.split('id="usage-lines"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr data-kind.*?</tr>", table, flags=re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]


def test_the_usage_page_shows_one_line_per_reply_or_title_and_each_grant_and_refund(
    client: Client, alice: Any, history: Conversation
) -> None:
    client.force_login(alice)
    page = client.get("/usage/").content.decode()
    rows = _rows(page)
    assert len(rows) == 7  # not one per ledger entry, nor per provider call
    # A reply tried twice is one line, named after the model of its latest call.
    assert any("Reply (2 provider calls) Sourdough at home Claude Opus 5.5 1200 300 -12" in r
               for r in rows)  # fmt: skip
    assert any("Title Sourdough at home Claude Haiku 5.5 60 6 -1" in r for r in rows)
    assert any("Reply Sourdough at home GPT-5.5 5 7 own key" in r for r in rows)
    assert any("Reply a deleted conversation Claude Sonnet 5.5 0 0 -3" in r for r in rows)
    assert any("Coins added: Beta tester +250" in r for r in rows)
    assert any("Refund: The reply was cut short a deleted conversation +3" in r for r in rows)
    assert any("Coins added: Welcome coins +1000" in r for r in rows)
    assert f'href="/chat/{history.pk}/"' in page and "/chat/999/" not in page
    # Totals: per model (Bob's call is not Alice's) and per day, and the balance.
    models = page.split('id="usage-models"', 1)[1].split("</table>", 1)[0]
    assert re.search(r"Claude Opus 5.5</th><td[^>]*>1</td><td[^>]*>1200</td>", models)
    assert re.search(
        r"GPT-5.5</th><td[^>]*>1</td><td[^>]*>5</td><td[^>]*>7</td><td[^>]*>0<", models
    )
    assert "Spent on replies and titles: <strong>16</strong>" in page
    assert f'<strong id="usage-balance">{services.balance_of(user_id=alice.pk)}</strong>' in page


def test_the_chart_draws_the_last_30_days_with_words_for_screen_readers(
    client: Client, alice: Any, history: Conversation
) -> None:
    LlmUsage.objects.filter(user=alice, message_id=20).update(
        created_at=timezone.now() - dt.timedelta(days=3)
    )
    client.force_login(alice)
    page = client.get("/usage/").content.decode()
    svg = page.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert (
        'role="img"' in svg and 'aria-labelledby="spending-chart-title spending-chart-desc"' in svg
    )
    assert "Coins spent per day, last 30 days" in svg
    assert svg.count('class="chart-bar"') == 30
    today = timezone.localdate()
    assert f"{today:%A %B %-d}: 13 coins" in svg
    assert f"{today - dt.timedelta(days=3):%A %B %-d}: 3 coins" in svg
    assert "16 coins in all" in svg
    days = page.split('id="usage-days"', 1)[1].split("</table>", 1)[0]
    assert days.count('<tr><th scope="row"') == 2  # the two days with spending, as a table too


def test_the_history_is_paginated(client: Client, alice: Any, settings: Any) -> None:
    LlmUsage.objects.bulk_create(
        LlmUsage(user=alice, message_id=n, provider="demo", model="demo", status="ok",
                 coins_charged=1)
        for n in range(1, usage_views.LINES_PER_PAGE + 11)
    )  # fmt: skip
    client.force_login(alice)
    first = client.get("/usage/").content.decode()
    second = client.get("/usage/?page=2").content.decode()
    assert len(_rows(first)) == usage_views.LINES_PER_PAGE
    assert len(_rows(second)) == 11  # ten replies and the welcome coins
    assert "Page 1 of 2" in first and 'href="?page=2"' in first
    assert "Welcome coins" in second and "Welcome coins" not in first
    assert client.get("/usage/?page=99").status_code == 200  # the last page


def test_the_usage_page_needs_a_logged_in_person(client: Client) -> None:
    for url in ("/usage/", "/usage/usage.csv"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_header_links_to_the_usage_page(client: Client, alice: Any) -> None:
    client.force_login(alice)
    page = client.get("/chat/").content.decode()
    assert 'href="/usage/"' in page


@pytest.mark.django_db(transaction=True)
async def test_the_csv_has_every_line_and_no_one_else_s(
    alice: Any, history: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(usage_views, "CSV_CHUNK", 2)  # several chunks
    client = AsyncClient()
    await client.aforce_login(alice)
    response = await client.get("/usage/usage.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="usage-')
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()  # type: ignore[attr-defined]
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 7
    assert {r["kind"] for r in rows} == {"Reply", "Title", "Coins added", "Refund"}
    opus = next(r for r in rows if r["model"] == "claude-opus-5-5")
    assert (opus["provider calls"], opus["input tokens"], opus["coins"]) == ("2", "1200", "-12")
    assert opus["conversation title"] == "Sourdough at home"
    assert sum(int(r["coins"]) for r in rows) == 1000 + 250 + 3 - 16
    assert "gpt-5.5" in body and "40" not in [r["coins"] for r in rows]  # bob's call is not here


def test_text_a_spreadsheet_would_run_is_written_as_text() -> None:
    assert usage_views._csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert usage_views._csv_safe("Beta tester") == "Beta tester"


@pytest.mark.django_db(transaction=True)
async def test_lines_made_at_the_same_moment_are_each_in_the_csv_once(
    alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks are cut by offset: the lines' order must be total, or a chunk could repeat one
    line and the next skip another."""
    monkeypatch.setattr(usage_views, "CSV_CHUNK", 3)
    await LlmUsage.objects.abulk_create(
        LlmUsage(user=alice, message_id=n, provider="demo", model="demo", status="ok",
                 coins_charged=1, input_tokens=n)
        for n in range(1, 12)
    )  # fmt: skip
    await LlmUsage.objects.filter(user=alice).aupdate(created_at=timezone.now())
    client = AsyncClient()
    await client.aforce_login(alice)
    response = await client.get("/usage/usage.csv")
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()  # type: ignore[attr-defined]
    rows = [r for r in csv.DictReader(io.StringIO(body)) if r["kind"] == "Reply"]
    assert sorted(int(r["input tokens"]) for r in rows) == list(range(1, 12))
