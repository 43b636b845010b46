"""Coins and LlmUsage for every way a reply ends, through the consumer and the fake provider."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db.models import Sum

from billing import pricing
from billing.models import LedgerEntry, LlmUsage
from billing.services import balance_of, coins_adjust
from chat import runner
from chat.models import Conversation, Message
from providers.catalogue import get_model
from providers.events import Usage
from tests.chat.helpers import connect, receive, send, until_end
from tests.fakes.anthropic import error_response, text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)
SONNET = get_model("claude-sonnet-5-5")


@pytest.fixture
def conversation(alice: Any) -> Conversation:
    return Conversation.objects.create(owner=alice, model=SONNET.id)


async def _ledger_sum(user_id: int) -> int:
    total = await LedgerEntry.objects.filter(account__user_id=user_id).aaggregate(s=Sum("amount"))
    return int(total["s"] or 0)


async def _balance(user_id: int) -> int:
    return await database_sync_to_async(balance_of)(user_id=user_id)


async def test_coins_charged_equal_the_price_of_the_usage_the_provider_reported(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(
        text_reply(["A ", "priced ", "reply."], input_tokens=1200, output_tokens=900)
    )
    before = await _balance(alice.pk)
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="What does this cost?")
    stop = (await until_end(tab))[-1]
    expected = pricing.coins_for(
        pricing.cost_usd(SONNET, Usage(input_tokens=1200, output_tokens=900))
    )
    assert expected == 18  # (1200 * $3 + 900 * $15) / 1M = $0.0171 -> 17.1 coins, rounded up
    assert stop["coins_charged"] == expected
    assert stop["balance"] == before - expected == await _balance(alice.pk)
    assert stop["usage"] == {"input_tokens": 1200, "output_tokens": 900}
    assert await _ledger_sum(alice.pk) == stop["balance"]
    usage = await LlmUsage.objects.aget(message_id=stop["message_id"])
    assert (usage.status, usage.provider, usage.model, usage.byok) == (
        "ok",
        "anthropic",
        SONNET.id,
        False,
    )
    assert (usage.input_tokens, usage.output_tokens, usage.coins_charged) == (1200, 900, expected)
    assert usage.cost_usd == Decimal("0.0171")
    assert (
        usage.time_to_first_token_ms is not None
        and usage.duration_ms >= usage.time_to_first_token_ms
    )
    assert not usage.usage_estimated and usage.attempt == 1
    await tab.disconnect()


async def test_a_reply_that_failed_before_any_output_costs_nothing(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer, waits: list[float]
) -> None:
    anthropic_server.default = error_response(529, "overloaded_error", "Overloaded")
    before = await _balance(alice.pk)
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="hello?")
    end = (await until_end(tab))[-1]
    assert end["type"] == "error" and end["code"] == "overloaded"
    assert await _balance(alice.pk) == before == await _ledger_sum(alice.pk)
    attempts = [u async for u in LlmUsage.objects.filter(message_id=end["message_id"])]
    assert len(attempts) == 3  # retried before any output, every attempt recorded
    assert {(u.status, u.error_code, u.coins_charged) for u in attempts} == {
        ("error", "overloaded", 0)
    }
    kinds = [
        e
        async for e in LedgerEntry.objects.filter(message_id=end["message_id"]).values_list(
            "kind", flat=True
        )
    ]
    assert sorted(kinds) == ["hold", "release"]
    await tab.disconnect()


async def test_a_stopped_reply_pays_only_for_what_was_generated(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(
        text_reply([f"w{i} " for i in range(2000)], delay=0.01, input_tokens=100)
    )
    before = await _balance(alice.pk)
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="long")
    while (await receive(tab))["type"] != "text_delta":
        pass
    await asyncio.sleep(0.3)
    await send(tab, type="stop")
    stop = (await until_end(tab))[-1]
    saved = await Message.objects.aget(pk=stop["message_id"])
    usage = await LlmUsage.objects.aget(message_id=stop["message_id"])
    assert usage.status == "stopped" and usage.usage_estimated
    # No final count came: the output is estimated from the text received, not max_tokens.
    assert 0 < usage.output_tokens <= len(saved.content) // 4 + 1
    full = pricing.coins_for(pricing.cost_usd(SONNET, Usage(input_tokens=100, output_tokens=2000)))
    assert 0 < stop["coins_charged"] < full
    assert stop["balance"] == before - stop["coins_charged"] == await _ledger_sum(alice.pk)
    await tab.disconnect()


async def test_closing_the_tab_still_bills_the_finished_reply(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(
        text_reply([f"x{i} " for i in range(40)], delay=0.005, output_tokens=40)
    )
    before = await _balance(alice.pk)
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="bill me anyway")
    while (await receive(tab))["type"] != "message_start":
        pass
    await tab.disconnect()
    await runner.wait_for_replies()
    usage = await LlmUsage.objects.aget(user=alice)
    assert usage.status == "ok" and usage.coins_charged > 0
    assert await _balance(alice.pk) == before - usage.coins_charged


async def test_an_empty_balance_is_refused_without_a_provider_call_and_nothing_is_written(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    await database_sync_to_async(coins_adjust)(
        user_id=alice.pk, amount=-1000, reason="spent", reference="empty", created_by_id=None
    )
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Am I broke?")
    frame = await receive(tab)
    assert frame["type"] == "error" and frame["code"] == "insufficient_coins"
    assert "balance is 0 coins" in frame["message"]
    # ... and what to do next.
    assert "your own provider key" in frame["message"] and "administrator" in frame["message"]
    assert anthropic_server.requests == []
    assert await Message.objects.filter(conversation=conversation).acount() == 0
    assert await LlmUsage.objects.acount() == 0
    await tab.disconnect()


async def test_max_tokens_is_lowered_to_what_the_balance_can_pay_for(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    await database_sync_to_async(coins_adjust)(
        user_id=alice.pk, amount=-900, reason="spent", reference="low", created_by_id=None
    )
    anthropic_server.enqueue(text_reply(["short"]))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="As long as you like", max_tokens=100_000)
    await until_end(tab)
    sent = anthropic_server.requests[-1].body["max_tokens"]
    # 100 coins = $0.10; at $15 per million output tokens that is under 6,700 tokens.
    assert 256 <= sent < 6_700
    assert (
        pricing.hold_coins(SONNET, input_tokens=pricing.estimate_input_tokens(19), max_tokens=sent)
        <= 100
    )
    await tab.disconnect()


async def test_two_sends_at_once_cannot_spend_the_same_coins(
    alice: Any, anthropic_server: SSEServer
) -> None:
    # Two conversations, two tabs, one balance that covers about one worst-case hold.
    await database_sync_to_async(coins_adjust)(
        user_id=alice.pk, amount=-500, reason="spent", reference="half", created_by_id=None
    )
    anthropic_server.default = text_reply(["ok"], delay=0.01)
    first = await Conversation.objects.acreate(owner=alice, model="claude-opus-5-5")
    second = await Conversation.objects.acreate(owner=alice, model="claude-opus-5-5")
    tab_a, tab_b = await connect(alice, first), await connect(alice, second)
    await asyncio.gather(
        send(tab_a, type="send", content="a", max_tokens=16_000),
        send(tab_b, type="send", content="b", max_tokens=16_000),
    )
    ends = await asyncio.gather(until_end(tab_a), until_end(tab_b), return_exceptions=True)
    assert all(not isinstance(e, BaseException) for e in ends)
    balance = await _balance(alice.pk)
    assert balance >= 0 and balance == await _ledger_sum(alice.pk)
    await tab_a.disconnect()
    await tab_b.disconnect()
