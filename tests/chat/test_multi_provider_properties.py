"""Property "multi-provider streaming": every provider, any split of any text, the same neutral
events from the adapter, and the client reassembles exactly that text with the provider's usage."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat import runner
from chat.models import Conversation, Message
from providers import registry
from providers.base import ChatMessage, ChatRequest, Credentials
from providers.events import MessageStart, MessageStop, TextDelta, UsageUpdate
from tests.chat.helpers import ClientView, connect, send, until_end
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import openai as fake_openai
from tests.fakes.sse_server import Script, SSEServer
from tests.strategies import delta_splits

INPUT, OUTPUT = 33, 44
# provider -> (a model of it, the path prefix its base URL has on the fake server)
PROVIDERS: dict[str, tuple[str, str]] = {
    "anthropic": ("claude-haiku-5-5", ""),
    "openai": ("gpt-5.5", "/v1"),
    "openrouter": ("meta-llama/llama-4-maverick", "/api/v1"),
}
_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def script(provider: str, chunks: list[str]) -> Script:
    model = PROVIDERS[provider][0]
    if provider == "anthropic":
        return fake_anthropic.text_reply(
            chunks, model=model, input_tokens=INPUT, output_tokens=OUTPUT
        )
    return fake_openai.text_reply(
        chunks,
        model=model,
        prompt_tokens=INPUT,
        completion_tokens=OUTPUT,
        comments=provider == "openrouter",
    )


@_SETTINGS
@given(provider=st.sampled_from(sorted(PROVIDERS)), chunks=delta_splits())
async def test_every_adapter_yields_the_same_neutral_events(
    all_providers: SSEServer, provider: str, chunks: list[str]
) -> None:
    all_providers.enqueue(script(provider, chunks))
    model, prefix = PROVIDERS[provider]
    request = ChatRequest(model=model, messages=[ChatMessage("user", "go")], max_tokens=100)
    credentials = Credentials(api_key="sk-test", base_url=f"{all_providers.url}{prefix}")
    events = [e async for e in registry.adapter(provider).stream(request, credentials)]
    # Usage updates may come more or less often; everything else is the same for everyone.
    shown = [e for e in events if not isinstance(e, UsageUpdate)]
    # The response's id is each provider's own (traces name it); the model is the same.
    assert isinstance(shown[0], MessageStart) and shown[0].model == model and shown[0].id
    assert shown[1:-1] == [TextDelta(c) for c in chunks]
    stop = shown[-1]
    assert isinstance(stop, MessageStop) and stop.stop_reason == "end_turn"
    assert (stop.usage.input_tokens, stop.usage.output_tokens) == (INPUT, OUTPUT)


@_SETTINGS
@given(provider=st.sampled_from(sorted(PROVIDERS)), chunks=delta_splits())
@pytest.mark.django_db(transaction=True)
async def test_multi_provider_streaming(
    alice: Any, all_providers: SSEServer, provider: str, chunks: list[str]
) -> None:
    all_providers.enqueue(script(provider, chunks))
    conversation = await database_sync_to_async(Conversation.objects.create)(
        owner=alice, model=PROVIDERS[provider][0]
    )
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="stream this")
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    view = ClientView()
    for frame in frames:
        view.apply(frame)
    stop = frames[-1]
    assert stop["type"] == "message_stop" and stop["provider"] == provider
    expected = "".join(chunks)
    assert view.gaps == 0 and view.text[stop["message_id"]] == expected
    assert stop["usage"] == {"input_tokens": INPUT, "output_tokens": OUTPUT}
    saved = await Message.objects.aget(pk=stop["message_id"])
    assert (saved.content, saved.output_tokens) == (expected, OUTPUT)
