"""Conversation titles: one short non-streaming call after the first reply, billed and recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from billing.models import LedgerEntry, LlmUsage
from billing.services import balance_of, reconcile
from chat import runner
from chat.models import Conversation
from chat.titles import DEFAULT_TITLE, clean_title
from providers import services as key_services
from tests.chat.helpers import connect, receive, send, until_end
from tests.fakes.anthropic import error_response, message_response, text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _titles_on(settings: Any) -> None:
    settings.AUTO_TITLES = True


async def _first_exchange(
    alice: Any, server: SSEServer | None, model: str = "claude-sonnet-5-5"
) -> tuple[Conversation, WebsocketCommunicator, list[dict[str, Any]]]:
    conversation = await database_sync_to_async(Conversation.objects.create)(
        owner=alice, model=model
    )
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="How do I bake sourdough bread at home?")
    frames = await until_end(tab)
    await runner.wait_for_replies()
    return conversation, tab, frames


async def test_the_first_reply_is_followed_by_a_title_call_that_names_the_conversation(
    alice: Any, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(
        text_reply(["Start with ", "a starter."]),
        message_response('"Baking Sourdough at Home."'),
    )
    before = await database_sync_to_async(balance_of)(user_id=alice.pk)
    conversation, tab, frames = await _first_exchange(alice, anthropic_server)
    title_frame = await receive(tab)
    await tab.disconnect()
    usage = await LlmUsage.objects.aget(purpose="title")
    after = await database_sync_to_async(balance_of)(user_id=alice.pk)
    # The tabs hear the title and what it cost, under the reply it followed, and the balance.
    assert title_frame == {
        "type": "conversation_title",
        "conversation_id": conversation.pk,
        "title": "Baking Sourdough at Home",
        "message_id": frames[-1]["message_id"],
        "model": "claude-haiku-5-5",
        "usage": {"input_tokens": 60, "output_tokens": 6},
        "provider": "anthropic",
        "byok": False,
        "coins_charged": usage.coins_charged,
        "balance": after,
    }
    await conversation.arefresh_from_db()
    assert conversation.title == "Baking Sourdough at Home"
    # One non-streaming call to the provider's title model (its cheapest), without thinking,
    # with a small output limit.
    call = anthropic_server.requests[1].body
    assert call["model"] == "claude-haiku-5-5"
    assert "stream" not in call and "thinking" not in call and call["max_tokens"] <= 40
    assert "sourdough" in call["messages"][0]["content"]
    assert (usage.status, usage.input_tokens, usage.output_tokens) == ("ok", 60, 6)
    assert (usage.model, usage.message_id) == ("claude-haiku-5-5", frames[-1]["message_id"])
    assert usage.coins_charged >= 1
    reply_cost = frames[-1]["coins_charged"]
    assert after == before - reply_cost - usage.coins_charged
    assert await database_sync_to_async(reconcile)() == []
    # The ledger names the title's movements as a title's, not a reply's.
    reasons = [
        e.reason
        async for e in LedgerEntry.objects.filter(
            conversation_id=conversation.pk, reference__startswith="title:"
        )
    ]
    assert sorted(reasons) == [
        "Hold released",
        "Hold: Title from claude-haiku-5-5",
        "Title from claude-haiku-5-5",
    ]


async def test_a_later_reply_does_not_rename_the_conversation(
    alice: Any, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["One."]), message_response("Bread"))
    _, tab, _ = await _first_exchange(alice, anthropic_server)
    await receive(tab)  # the title
    anthropic_server.enqueue(text_reply(["Two."]))
    await send(tab, type="send", content="And rye?")
    await until_end(tab)
    await runner.wait_for_replies()
    await tab.disconnect()
    assert len(anthropic_server.requests) == 3  # reply, title, reply: no second title call
    assert await LlmUsage.objects.filter(purpose="title").acount() == 1


async def test_a_failed_title_call_keeps_the_default_title_and_costs_nothing(
    alice: Any, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(
        text_reply(["Fine."]), error_response(529, "overloaded_error", "Overloaded")
    )
    before = await database_sync_to_async(balance_of)(user_id=alice.pk)
    conversation, tab, frames = await _first_exchange(alice, anthropic_server)
    assert await tab.receive_nothing(timeout=0.3)  # no title frame, no error frame
    await tab.disconnect()
    await conversation.arefresh_from_db()
    assert conversation.title == DEFAULT_TITLE
    usage = await LlmUsage.objects.aget(purpose="title")
    assert (usage.status, usage.error_code, usage.coins_charged) == ("error", "overloaded", 0)
    after = await database_sync_to_async(balance_of)(user_id=alice.pk)
    assert after == before - frames[-1]["coins_charged"]
    assert await database_sync_to_async(reconcile)() == []


async def test_a_byok_title_call_uses_the_persons_key_and_costs_no_coins(
    alice: Any, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["Yes."]), message_response("Own key title"))
    await database_sync_to_async(key_services.provider_key_save)(
        user_id=alice.pk, provider="anthropic", key="sk-ant-alices-own-key-42", verified=True
    )
    before = await database_sync_to_async(balance_of)(user_id=alice.pk)
    _, tab, _ = await _first_exchange(alice, anthropic_server)
    await receive(tab)
    await tab.disconnect()
    assert "sk-ant-alices-own-key-42" in json.dumps(anthropic_server.requests[1].headers)
    usage = await LlmUsage.objects.aget(purpose="title")
    assert usage.byok and usage.coins_charged == 0
    assert await database_sync_to_async(balance_of)(user_id=alice.pk) == before


async def test_the_demo_model_titles_locally_and_free(alice: Any) -> None:
    before = await database_sync_to_async(balance_of)(user_id=alice.pk)
    conversation, tab, frames = await _first_exchange(alice, None, model="demo")
    frame = await receive(tab)
    await tab.disconnect()
    assert frame["title"] == "How do I bake sourdough bread"
    assert (frame["coins_charged"], frame["usage"]) == (0, {"input_tokens": 0, "output_tokens": 0})
    await conversation.arefresh_from_db()
    assert conversation.title == "How do I bake sourdough bread"
    usage = await LlmUsage.objects.aget(purpose="title")
    assert (usage.input_tokens, usage.output_tokens, usage.coins_charged) == (0, 0, 0)
    # The reply is all the person paid for.
    after = await database_sync_to_async(balance_of)(user_id=alice.pk)
    assert after == before - frames[-1]["coins_charged"] == frame["balance"]


async def test_a_key_that_cannot_reach_the_title_model_titles_with_the_reply_s_model(
    alice: Any, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(
        text_reply(["Rye."]),
        error_response(404, "not_found_error", "model: claude-haiku-5-5"),
        message_response("Rye Bread"),
    )
    before = await database_sync_to_async(balance_of)(user_id=alice.pk)
    _, tab, frames = await _first_exchange(alice, anthropic_server)
    frame = await receive(tab)
    await tab.disconnect()
    assert [r.body["model"] for r in anthropic_server.requests[1:]] == [
        "claude-haiku-5-5",
        "claude-sonnet-5-5",
    ]
    assert (frame["title"], frame["model"]) == ("Rye Bread", "claude-sonnet-5-5")
    calls = [u async for u in LlmUsage.objects.filter(purpose="title").order_by("id")]
    assert [(u.model, u.status, u.error_code, u.coins_charged) for u in calls] == [
        ("claude-haiku-5-5", "error", "not_found", 0),
        ("claude-sonnet-5-5", "ok", "", frame["coins_charged"]),
    ]
    after = await database_sync_to_async(balance_of)(user_id=alice.pk)
    assert after == before - frames[-1]["coins_charged"] - frame["coins_charged"]
    assert await database_sync_to_async(reconcile)() == []


async def test_every_tab_of_the_person_follows_the_balance_of_a_reply_and_its_title(
    alice: Any, bob: Any, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["Yes."]), message_response("Oven Temperatures"))
    elsewhere = await database_sync_to_async(Conversation.objects.create)(
        owner=alice, model="claude-sonnet-5-5"
    )
    bobs = await database_sync_to_async(Conversation.objects.create)(
        owner=bob, model="claude-sonnet-5-5"
    )
    other_tab, bobs_tab = await connect(alice, elsewhere), await connect(bob, bobs)
    _, tab, frames = await _first_exchange(alice, anthropic_server)
    title = await receive(tab)
    seen = [await receive(other_tab), await receive(other_tab)]
    assert await tab.receive_nothing(timeout=0.2)  # told once, with the title
    assert await bobs_tab.receive_nothing(timeout=0.1)  # someone else's balance: never
    await tab.disconnect()
    await other_tab.disconnect()
    await bobs_tab.disconnect()
    assert seen == [
        {"type": "balance", "balance": frames[-1]["balance"]},
        {"type": "balance", "balance": title["balance"]},
    ]
    assert title["balance"] == await database_sync_to_async(balance_of)(user_id=alice.pk)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('"Sourdough Basics"', "Sourdough Basics"),
        ("Title: **Rye bread.**\nExtra line", "Rye bread"),
        ("\n\n  «Pain au levain»  ", "Pain au levain"),
        ("x" * 200, "x" * 79 + "…"),
        ("   ", ""),
    ],
)
def test_titles_are_cleaned_to_one_short_line(raw: str, clean: str) -> None:
    assert clean_title(raw) == clean


async def test_a_title_settle_that_fails_is_tried_again_and_bills_once(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    from chat import settlement, titles

    monkeypatch.setattr(settlement, "SETTLE_RETRY_WAITS", (0.01, 0.01))
    monkeypatch.setattr(titles, "SETTLE_RETRY_WAITS", (0.01, 0.01))
    real, calls = titles._title_settle, []

    def flaky(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("the database went away")
        return real(**kwargs)

    monkeypatch.setattr(titles, "_title_settle", flaky)
    anthropic_server.enqueue(text_reply(["Bread."]), message_response("Home Baking"))
    conversation, tab, _ = await _first_exchange(alice, anthropic_server)
    await tab.disconnect()
    await conversation.arefresh_from_db()
    assert conversation.title == "Home Baking" and len(calls) == 2
    assert await LlmUsage.objects.filter(purpose="title").acount() == 1
    assert await database_sync_to_async(reconcile)() == []
