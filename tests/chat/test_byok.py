"""Bring your own key: the person's key is used, costs no coins, is recorded, and never leaks."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import services as billing
from billing.models import LedgerEntry, LlmUsage
from chat.models import Conversation
from providers import registry
from providers.base import Credentials
from providers.catalogue import CATALOGUE, get_model
from providers.events import Usage
from providers.resolution import resolve
from providers.services import provider_key_save
from tests.chat.helpers import connect, receive, send, until_end
from tests.conftest import configure_provider
from tests.fakes.anthropic import error_response, text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)
OWN = "sk-ant-api03-alice-own-key-7777"
SITE = "sk-ant-test-0000000000000000"
SERVED = [m for m in CATALOGUE if m.provider in registry.PROVIDERS and m.retires_on is None]


@given(model=st.sampled_from(SERVED), key=st.text(min_size=1, max_size=40), site=st.booleans())
def test_byok_provider_selection_own_key_wins(model: Any, key: str, site: bool) -> None:
    from django.conf import settings as django_settings
    from django.test import override_settings

    own = Credentials(api_key=key, base_url="http://own.invalid", byok=True)
    providers = copy.deepcopy(django_settings.PROVIDERS)
    providers["anthropic"]["API_KEY"] = SITE if site else ""
    with override_settings(PROVIDERS=providers):
        resolved = resolve(model.id, own=own)
    assert resolved.credentials is own and resolved.credentials.byok


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    model=st.sampled_from(SERVED),
    input_tokens=st.integers(0, 10**7),
    output_tokens=st.integers(0, 10**7),
    cost=st.one_of(st.none(), st.floats(0, 100)),
)
def test_byok_coin_exemption_nets_zero_for_any_usage(
    alice: Any, model: Any, input_tokens: int, output_tokens: int, cost: float | None
) -> None:
    before = billing.balance_of(user_id=alice.pk)
    with transaction.atomic():
        settlement = billing.reply_settle(
            user_id=alice.pk, model=model,
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost),
            hold=None, reference="byok", conversation_id=1, message_id=1,
        )  # fmt: skip
    assert settlement.coins_charged == 0
    assert billing.balance_of(user_id=alice.pk) == settlement.balance == before


@pytest.fixture
def own_key(alice: Any, anthropic_server: SSEServer) -> str:
    provider_key_save(user_id=alice.pk, provider="anthropic", key=OWN, verified=True)
    return OWN


async def test_a_byok_reply_uses_the_persons_key_costs_nothing_and_says_so(
    alice: Any, own_key: str, anthropic_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    anthropic_server.enqueue(
        text_reply(["Mine, ", "all mine."], input_tokens=500, output_tokens=300)
    )
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    before = await database_sync_to_async(billing.balance_of)(user_id=alice.pk)
    raw: list[str] = []
    with caplog.at_level(logging.DEBUG):
        tab = await connect(alice, conversation)
        await send(tab, type="send", content="use my key")
        frames = await until_end(tab)
        raw = [json.dumps(f) for f in frames]
        await tab.disconnect()
    start = next(f for f in frames if f["type"] == "message_start")
    stop = frames[-1]
    # BYOK provider indication: both ends of the reply say which provider and that it was BYOK.
    assert (start["provider"], start["byok"]) == ("anthropic", True)
    assert (stop["provider"], stop["byok"], stop["coins_charged"]) == ("anthropic", True, 0)
    assert (
        stop["balance"]
        == before
        == await database_sync_to_async(billing.balance_of)(user_id=alice.pk)
    )
    headers = anthropic_server.requests[-1].headers
    assert OWN in headers.get("x-api-key", "") + headers.get("authorization", "")
    assert SITE not in headers.get("x-api-key", "") + headers.get("authorization", "")
    usage = await LlmUsage.objects.aget(message_id=stop["message_id"])
    assert usage.byok and usage.coins_charged == 0 and usage.output_tokens == 300
    assert not await LedgerEntry.objects.filter(message_id=stop["message_id"]).aexists()
    assert not any(OWN in line for line in raw)
    assert OWN not in caplog.text and SITE not in caplog.text


async def test_an_invalid_own_key_says_so_and_costs_nothing(
    alice: Any, own_key: str, anthropic_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    anthropic_server.enqueue(error_response(401, "authentication_error", "invalid x-api-key"))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    before = await database_sync_to_async(billing.balance_of)(user_id=alice.pk)
    with caplog.at_level(logging.DEBUG):
        tab = await connect(alice, conversation)
        await send(tab, type="send", content="hi")
        end = (await until_end(tab))[-1]
        await tab.disconnect()
    assert end["code"] == "auth" and "Your own key" in end["message"]
    assert OWN not in json.dumps(end) and OWN not in caplog.text
    assert await database_sync_to_async(billing.balance_of)(user_id=alice.pk) == before


async def test_a_model_without_a_site_key_is_available_only_with_an_own_key(
    alice: Any, bob: Any, own_key: str, anthropic_server: SSEServer, settings: Any
) -> None:
    configure_provider(settings, "anthropic", API_KEY="")
    anthropic_server.enqueue(text_reply(["ok"]))
    mine = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    theirs = await Conversation.objects.acreate(owner=bob, model="claude-sonnet-5-5")
    tab = await connect(bob, theirs)
    await send(tab, type="send", content="hi")
    refused = await receive(tab)
    assert refused["code"] == "permission" and "no Anthropic key" in refused["message"]
    await tab.disconnect()
    tab = await connect(alice, mine)
    await send(tab, type="send", content="hi")
    assert (await until_end(tab))[-1]["type"] == "message_stop"
    await tab.disconnect()
    assert get_model("claude-sonnet-5-5").provider == "anthropic"


@pytest.mark.parametrize(
    ("provider", "model", "prefix"),
    [("openai", "gpt-5.4-mini", "/v1"), ("openrouter", "google/gemini-2.5-pro", "/api/v1")],
)
async def test_an_own_openai_or_openrouter_key_streams_a_reply_without_a_site_key(
    alice: Any,
    all_providers: SSEServer,
    settings: Any,
    provider: str,
    model: str,
    prefix: str,
) -> None:
    from tests.fakes import openai as fake_openai

    configure_provider(settings, "openai", API_KEY="")

    configure_provider(settings, "openrouter", API_KEY="")
    own = f"sk-{provider}-alice-own-key-5151"
    await database_sync_to_async(provider_key_save)(
        user_id=alice.pk, provider=provider, key=own, verified=True
    )
    all_providers.enqueue(fake_openai.text_reply(["Own ", "key."], model=model, cost=0.5))
    conversation = await Conversation.objects.acreate(owner=alice, model=model)
    before = await database_sync_to_async(billing.balance_of)(user_id=alice.pk)
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="hello")
    frames = await until_end(tab)
    await tab.disconnect()
    stop = frames[-1]
    assert (stop["type"], stop["provider"], stop["byok"]) == ("message_stop", provider, True)
    assert stop["coins_charged"] == 0
    assert await database_sync_to_async(billing.balance_of)(user_id=alice.pk) == before
    request = all_providers.requests[-1]
    assert request.path == f"{prefix}/chat/completions"
    assert request.headers["authorization"] == f"Bearer {own}"
    assert not any(own in json.dumps(f) for f in frames)
