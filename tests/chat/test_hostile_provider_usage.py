"""Whatever usage figures a provider streams (below zero, beyond the model or the columns, not
numbers, a cost below zero or absurd), through every adapter at the wire and the whole site:
the reply ends complete with its text and its LlmUsage row, its figures are within the model's
limits, it never credits its person, and every balance is the sum of its ledger entries."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import services as billing
from billing.models import LedgerEntry, LlmUsage
from chat import runner
from chat.models import Conversation, Message
from providers.catalogue import get_model
from providers.usage_checks import count
from tests.chat.helpers import ClientView, connect, send, until_end
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import openai as fake_openai
from tests.fakes.sse_server import Script, SSEServer

pytestmark = pytest.mark.django_db(transaction=True)

MODELS = {
    "anthropic": "claude-haiku-5-5",
    "openai": "gpt-5.5",
    "openrouter": "meta-llama/llama-4-maverick",
}
CHUNKS = ["Numbers ", "from a ", "broken provider."]

# What a provider could put where a count or a cost belongs, in JSON.
_figures: st.SearchStrategy[Any] = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-5, max_value=3_000_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([None, True, "12", [], {}]),
)


def _script(provider: str, input_tokens: Any, output_tokens: Any, cost: Any) -> Script:
    model = MODELS[provider]
    if provider == "anthropic":
        return fake_anthropic.text_reply(
            CHUNKS, model=model, input_tokens=input_tokens, output_tokens=output_tokens
        )
    return fake_openai.text_reply(
        CHUNKS,
        model=model,
        prompt_tokens=input_tokens,
        completion_tokens=output_tokens,
        cost=cost if provider == "openrouter" else None,
    )


def _books(user_id: int) -> tuple[int, int]:
    entries = LedgerEntry.objects.filter(account__user_id=user_id)
    return billing.balance_of(user_id=user_id), int(entries.aggregate(s=Sum("amount"))["s"])


def _sane(value: Any, limit: int) -> bool:
    """A whole number (12 or 12.0) the model could have."""
    counted = count(value)
    return counted is not None and 0 <= counted <= limit


@settings(
    max_examples=45,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    provider=st.sampled_from(sorted(MODELS)),
    input_tokens=_figures,
    output_tokens=_figures,
    cost=_figures,
)
async def test_hostile_usage_through_every_adapter_never_credits_and_keeps_the_books(
    alice: Any, all_providers: SSEServer, provider: str, input_tokens: Any, output_tokens: Any,
    cost: Any,
) -> None:  # fmt: skip
    await database_sync_to_async(billing.coins_adjust)(
        user_id=alice.pk, amount=100_000, reason="test", reference=uuid.uuid4().hex,
        created_by_id=None,
    )  # fmt: skip
    before, _ = await database_sync_to_async(_books)(alice.pk)
    all_providers.enqueue(_script(provider, input_tokens, output_tokens, cost))
    model = get_model(MODELS[provider])
    conversation = await Conversation.objects.acreate(owner=alice, model=model.id)
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Report anything")
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    view = ClientView()
    for frame in frames:
        view.apply(frame)
    end = frames[-1]
    assert end["type"] == "message_stop", end
    reply = await Message.objects.aget(pk=end["message_id"])
    assert (reply.status, reply.unsettled) == ("complete", False)
    assert reply.content == view.text[reply.pk] == "".join(CHUNKS)

    usage = await LlmUsage.objects.aget(message_id=reply.pk)
    assert 0 <= usage.input_tokens + usage.cache_read_input_tokens <= model.context_window
    assert 0 <= usage.output_tokens <= model.max_output_tokens
    assert Decimal(0) <= usage.cost_usd and usage.coins_charged >= 0
    if _sane(input_tokens, model.context_window):  # sane figures are billed as they came
        assert usage.input_tokens == count(input_tokens)
    if _sane(output_tokens, model.max_output_tokens):
        assert usage.output_tokens == count(output_tokens) and not usage.usage_estimated
    elif output_tokens is not None:
        assert usage.usage_estimated  # from the text the person received
    balance, ledger = await database_sync_to_async(_books)(alice.pk)
    assert balance == ledger == before - usage.coins_charged >= 0
