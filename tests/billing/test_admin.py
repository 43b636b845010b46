"""The Django admin for coins and usage, as an administrator and as a person who is not one."""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from billing.models import CoinAccount, LedgerEntry, LlmUsage

pytestmark = pytest.mark.django_db


@pytest.fixture
def usage_rows(alice: Any, bob: Any) -> None:
    for user, provider, tokens, coins in (
        (alice, "anthropic", 100, 5),
        (alice, "demo", 10, 1),
        (bob, "anthropic", 1000, 20),
    ):
        LlmUsage.objects.create(
            user=user, provider=provider, model="m", status="ok",
            input_tokens=tokens, output_tokens=tokens, coins_charged=coins, cost_usd="0.01",
        )  # fmt: skip


def _token(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_usage_list_totals_the_filtered_rows_and_is_read_only(
    admin_client: Client, usage_rows: None
) -> None:
    html = admin_client.get("/admin/billing/llmusage/?provider__exact=anthropic").content.decode()
    totals = re.search(r'id="usage-totals">(.*?)</p>', html, re.S)
    assert totals
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", totals.group(1)))
    assert "2 calls" in text and "1100 input tokens" in text and "25 coins" in text
    usage = LlmUsage.objects.first()
    assert usage is not None
    assert admin_client.get("/admin/billing/llmusage/add/").status_code == 403
    response = admin_client.post(
        f"/admin/billing/llmusage/{usage.pk}/change/", {"coins_charged": 0}
    )
    assert response.status_code == 403
    assert admin_client.get("/admin/billing/llmusage/?q=bob").content.decode().count("1000") >= 1


def test_refunding_a_call_twice_refunds_it_once(
    admin_client: Client, usage_rows: None, bob: Any
) -> None:
    usage = LlmUsage.objects.get(user=bob)
    before = CoinAccount.objects.get(user=bob).balance
    for _ in range(2):
        admin_client.post(
            "/admin/billing/llmusage/",
            {"action": "refund_selected", "_selected_action": [usage.pk]},
        )
    assert CoinAccount.objects.get(user=bob).balance == before + 20
    assert LedgerEntry.objects.filter(account__user=bob, kind="refund").count() == 1


def test_an_admin_grants_and_deducts_with_a_reason_written_to_the_ledger(
    admin_client: Client, admin_user: Any, alice: Any
) -> None:
    account = CoinAccount.objects.get(user=alice)
    url = f"/admin/billing/coinaccount/adjust/{account.pk}/"
    form = admin_client.get(url).content.decode()
    data = {"direction": "grant", "amount": 250, "reason": "Beta tester", "token": _token(form)}
    admin_client.post(url, data)
    admin_client.post(url, data)  # the same form submitted twice applies once
    account.refresh_from_db()
    assert account.balance == 1250
    entry = LedgerEntry.objects.get(account=account, reason="Beta tester")
    assert entry.created_by == admin_user and entry.amount == 250

    deduct = {
        "direction": "deduct",
        "amount": 5000,
        "reason": "Abuse",
        "token": _token(admin_client.get(url).content.decode()),
    }
    response = admin_client.post(url, deduct, follow=True)
    assert "cannot take the balance below zero" in response.content.decode()
    account.refresh_from_db()
    assert account.balance == 1250


@pytest.mark.parametrize(
    "bad",
    [
        {"amount": 0},
        {"amount": -5},
        {"amount": 10**9},
        {"amount": "1e3"},
        {"reason": ""},
        {"reason": "   "},
        {"direction": "steal"},
    ],
)
def test_adjustments_must_be_positive_bounded_and_give_a_reason(
    admin_client: Client, alice: Any, bad: dict[str, Any]
) -> None:
    account = CoinAccount.objects.get(user=alice)
    url = f"/admin/billing/coinaccount/adjust/{account.pk}/"
    data = {
        "direction": "grant",
        "amount": 10,
        "reason": "ok",
        "token": _token(admin_client.get(url).content.decode()),
    }
    response = admin_client.post(url, {**data, **bad})
    assert response.status_code == 200  # the form again, with its error
    account.refresh_from_db()
    assert account.balance == 1000


def test_the_balance_is_never_edited_directly_and_entries_are_read_only(
    admin_client: Client, alice: Any
) -> None:
    account = CoinAccount.objects.get(user=alice)
    admin_client.post(f"/admin/billing/coinaccount/{account.pk}/change/", {"balance": 10**6})
    account.refresh_from_db()
    assert account.balance == 1000
    entry = LedgerEntry.objects.get(account=account)
    assert (
        admin_client.post(
            f"/admin/billing/ledgerentry/{entry.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )


def test_an_account_drills_down_to_conversations_messages_and_usage(
    admin_client: Client, alice: Any
) -> None:
    account = CoinAccount.objects.get(user=alice)
    html = admin_client.get("/admin/billing/coinaccount/").content.decode()
    for link in (
        f"/admin/chat/conversation/?owner__id__exact={alice.pk}",
        f"/admin/chat/message/?conversation__owner__id__exact={alice.pk}",
        f"/admin/billing/llmusage/?user__id__exact={alice.pk}",
        f"/usage/people/{alice.pk}/",
        f"/admin/billing/coinaccount/adjust/{account.pk}/",
    ):
        assert link in html
        assert admin_client.get(link).status_code == 200


def test_an_admin_sees_someone_s_usage_page_as_they_do_with_conversations_in_the_admin(
    admin_client: Client, alice: Any
) -> None:
    from billing.models import LlmUsage
    from chat.models import Conversation

    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    LlmUsage.objects.create(
        user=alice, conversation_id=conversation.pk, message_id=3, provider="anthropic",
        model="claude-sonnet-5-5", status="ok", input_tokens=77, coins_charged=2,
    )  # fmt: skip
    page = admin_client.get(f"/usage/people/{alice.pk}/").content.decode()
    assert "Usage of alice" in page and "Welcome coins" in page and ">77<" in page
    assert f'href="/admin/chat/conversation/{conversation.pk}/change/"' in page
    assert f'href="/usage/people/{alice.pk}/usage.csv"' in page
    assert admin_client.get("/usage/people/999999/").status_code == 404


@pytest.mark.parametrize("url", ["/usage/people/{pk}/", "/usage/people/{pk}/usage.csv"])
def test_a_person_cannot_see_someone_else_s_usage(
    client: Client, alice: Any, bob: Any, url: str
) -> None:
    client.force_login(alice)
    response = client.get(url.format(pk=bob.pk))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/billing/coinaccount/",
        "/admin/billing/llmusage/",
        "/admin/billing/coinaccount/adjust/1/",
    ],
)
def test_people_who_are_not_admins_cannot_reach_the_billing_admin(
    client: Client, alice: Any, url: str
) -> None:
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_grant_coins_and_reconcile_coins_commands(alice: Any) -> None:
    out = StringIO()
    call_command("grant_coins", "alice", "40", reason="support ticket", reference="t-1", stdout=out)
    call_command("grant_coins", "alice", "40", reason="support ticket", reference="t-1", stdout=out)
    assert CoinAccount.objects.get(user=alice).balance == 1040
    with pytest.raises(CommandError):
        call_command("grant_coins", "alice", "0", reason="nothing")
    with pytest.raises(CommandError):
        call_command("grant_coins", "nobody", "5", reason="x")
    call_command("reconcile_coins", stdout=out)
    CoinAccount.objects.filter(user=alice).update(balance=7)
    with pytest.raises(CommandError, match="1 account"):
        call_command("reconcile_coins", stdout=out)


@pytest.mark.django_db(transaction=True)
async def test_an_admin_downloads_someone_s_usage_as_csv(alice: Any) -> None:
    from django.contrib.auth import get_user_model
    from django.test import AsyncClient

    root = await get_user_model().objects.acreate_superuser("root", "r@example.com", "x-pass-9")
    client = AsyncClient()
    await client.aforce_login(root)
    response = await client.get(f"/usage/people/{alice.pk}/usage.csv")
    body = b"".join([c async for c in response.streaming_content]).decode()  # type: ignore[attr-defined]
    assert response.status_code == 200 and "Welcome coins" in body
    assert (await client.get("/usage/people/999999/usage.csv")).status_code == 404
