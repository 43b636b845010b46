"""The OpenAI and OpenRouter adapter against a local server streaming their documented chunks,
through the real `openai` SDK."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from providers import registry
from providers.base import ChatMessage, ChatRequest, Credentials
from providers.errors import (
    AuthError,
    ByokAuthError,
    ContextTooLong,
    ModelNotFound,
    ProviderError,
    ProviderFailure,
    QuotaExceeded,
    RateLimited,
    Unavailable,
)
from providers.events import (
    MessageStart,
    MessageStop,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    UsageUpdate,
)
from providers.openai import OpenAIAdapter, OpenRouterAdapter
from tests.fakes.openai import completion, error_response, text_reply
from tests.fakes.sse_server import Chunk, SSEServer

GPT = "gpt-5.5"
OR_MODEL = "anthropic/claude-sonnet-5.5"


def _request(model: str = GPT, max_tokens: int = 512, system: str | None = None) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[
            ChatMessage("user", "Hello"),
            ChatMessage("assistant", "Hi! How can I help?"),
            ChatMessage("user", "Tell me a story"),
        ],
        max_tokens=max_tokens,
        system=system,
    )


def _creds(server: SSEServer, prefix: str, byok: bool = False) -> Credentials:
    return Credentials(api_key="sk-test-key-9876", base_url=f"{server.url}{prefix}", byok=byok)


async def openai_events(
    server: SSEServer, request: ChatRequest | None = None, byok: bool = False
) -> list[StreamEvent]:
    adapter = OpenAIAdapter()
    creds = _creds(server, "/v1", byok)
    return [e async for e in adapter.stream(request or _request(), creds)]


async def openrouter_events(
    server: SSEServer, request: ChatRequest | None = None
) -> list[StreamEvent]:
    adapter = OpenRouterAdapter()
    creds = _creds(server, "/api/v1")
    return [e async for e in adapter.stream(request or _request(OR_MODEL), creds)]


async def _error_of(events: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await events
    return caught.value


# --- OpenAI --------------------------------------------------------------------------------------


async def test_streams_text_and_the_usage_chunk(openai_server: SSEServer) -> None:
    openai_server.enqueue(
        text_reply(["Once", " upon", " a time."], prompt_tokens=50, completion_tokens=9)
    )
    events = await openai_events(openai_server)
    assert events[0] == MessageStart(model=GPT, id="chatcmpl-fake")
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Once", " upon", " a time."]
    stop = events[-1]
    assert isinstance(stop, MessageStop)
    assert stop.stop_reason == "end_turn" and stop.final_usage
    assert (stop.usage.input_tokens, stop.usage.output_tokens) == (50, 9)


async def test_cached_prompt_tokens_are_billed_as_cache_reads(openai_server: SSEServer) -> None:
    openai_server.enqueue(text_reply(["ok"], prompt_tokens=1000, cached_tokens=800))
    stop = (await openai_events(openai_server))[-1]
    assert isinstance(stop, MessageStop)
    assert (stop.usage.input_tokens, stop.usage.cache_read_input_tokens) == (200, 800)


async def test_sends_history_system_usage_option_and_key(openai_server: SSEServer) -> None:
    openai_server.enqueue(text_reply(["ok"]))
    await openai_events(openai_server, _request(system="Be brief."))
    request = openai_server.requests[0]
    assert request.path == "/v1/chat/completions"
    body = request.body
    assert body["model"] == GPT and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert request.headers["authorization"] == "Bearer sk-test-key-9876"


@pytest.mark.parametrize(
    ("model", "parameter"),
    [("gpt-5.5", "max_completion_tokens"), ("gpt-4.1-mini", "max_tokens")],
)
async def test_the_output_limit_goes_under_the_name_each_family_accepts(
    openai_server: SSEServer, model: str, parameter: str
) -> None:
    openai_server.enqueue(text_reply(["ok"], model=model))
    await openai_events(openai_server, _request(model, max_tokens=777))
    body = openai_server.requests[0].body
    assert body[parameter] == 777
    other = {"max_tokens", "max_completion_tokens"} - {parameter}
    assert not other & body.keys()


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "content_filter"),
    ],
)
async def test_finish_reasons_map_to_neutral_stop_reasons(
    openai_server: SSEServer, finish: str, stop_reason: str
) -> None:
    openai_server.enqueue(text_reply(["text"], finish=finish))
    stop = (await openai_events(openai_server))[-1]
    assert isinstance(stop, MessageStop) and stop.stop_reason == stop_reason


async def test_tool_call_deltas_are_survived_and_the_reply_completes_with_usage(
    openai_server: SSEServer,
) -> None:
    openai_server.enqueue(text_reply(["Let me check."], tool_call=True, completion_tokens=31))
    events = await openai_events(openai_server)
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert calls == [ToolCall("call_fake", "get_weather", {"city": "Paris"})]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Let me check."
    stop = events[-1]
    assert isinstance(stop, MessageStop)
    assert stop.stop_reason == "tool_use" and stop.usage.output_tokens == 31


async def test_a_refusal_is_shown_as_text_and_ends_as_refusal(openai_server: SSEServer) -> None:
    openai_server.enqueue(text_reply([], refusal="I can't help with that."))
    events = await openai_events(openai_server)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["I can't help with that."]
    stop = events[-1]
    assert isinstance(stop, MessageStop) and stop.stop_reason == "refusal"


async def test_a_stream_without_its_usage_chunk_says_the_usage_is_not_final(
    openai_server: SSEServer,
) -> None:
    openai_server.enqueue(text_reply(["partial"], include_usage=False))
    stop = (await openai_events(openai_server))[-1]
    assert isinstance(stop, MessageStop) and not stop.final_usage


async def test_an_error_chunk_mid_stream_raises_after_the_text_so_far(
    openai_server: SSEServer,
) -> None:
    openai_server.enqueue(text_reply(["Half", " a"], error_after=2))
    seen: list[StreamEvent] = []

    async def consume() -> None:
        adapter = OpenAIAdapter()
        async for event in adapter.stream(_request(), _creds(openai_server, "/v1")):
            seen.append(event)

    error = await _error_of(consume())
    assert isinstance(error, ProviderFailure) and error.retryable
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Half", " a"]


async def test_done_without_a_finish_reason_is_a_cut_off_reply(openai_server: SSEServer) -> None:
    openai_server.enqueue(text_reply(["cut"], no_finish=True, include_usage=False))
    assert isinstance(await _error_of(openai_events(openai_server)), Unavailable)


async def test_a_dropped_connection_is_unavailable(openai_server: SSEServer) -> None:
    openai_server.enqueue(text_reply(["a", "b", "c"], drop_after=1))
    assert isinstance(await _error_of(openai_events(openai_server)), Unavailable)


@pytest.mark.parametrize(
    ("script", "expected", "byok"),
    [
        (error_response(401, "Incorrect API key", code="invalid_api_key"), AuthError, False),
        (error_response(401, "Incorrect API key", code="invalid_api_key"), ByokAuthError, True),
        (error_response(404, "No such model", code="model_not_found"), ModelNotFound, False),
        (
            error_response(400, "maximum context length", code="context_length_exceeded"),
            ContextTooLong,
            False,
        ),
        (error_response(429, "quota", type="insufficient_quota"), QuotaExceeded, False),
        (error_response(503, "busy", type="server_error"), Unavailable, False),
    ],
)
async def test_errors_before_the_stream_map_to_the_shared_hierarchy(
    openai_server: SSEServer, script: Any, expected: type[ProviderError], byok: bool
) -> None:
    openai_server.enqueue(script)
    error = await _error_of(openai_events(openai_server, byok=byok))
    assert type(error) is expected
    assert "sk-test" not in error.message


async def test_rate_limit_honours_retry_after(openai_server: SSEServer) -> None:
    openai_server.enqueue(
        error_response(429, "Slow down", code="rate_limit_exceeded", **{"retry-after": "7"})
    )
    error = await _error_of(openai_events(openai_server))
    assert isinstance(error, RateLimited) and error.retry_after == 7


async def test_closing_the_stream_hangs_up_on_the_provider(openai_server: SSEServer) -> None:
    openai_server.enqueue(text_reply(["a"] * 50, delay=0.05))
    adapter = OpenAIAdapter()

    async def consume() -> None:
        async for _ in adapter.stream(_request(), _creds(openai_server, "/v1")):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.to_thread(openai_server.wait_for_disconnect, 2.0)


async def test_consecutive_replies_reuse_one_connection_to_the_provider(
    openai_server: SSEServer,
) -> None:
    """The body's end comes after `[DONE]` (here 50 ms later): read to it, the connection goes
    back to the pool instead of each reply paying a new TCP and TLS handshake."""
    for n in range(3):
        openai_server.enqueue(text_reply([f"reply {n}"], hang=0.05))
        events = await openai_events(openai_server)
        assert isinstance(events[-1], MessageStop)
    assert len({r.connection for r in openai_server.requests}) == 1


async def test_an_unreadable_chunk_mid_stream_is_a_provider_error_after_the_text_so_far(
    openai_server: SSEServer,
) -> None:
    script = text_reply(["kept", " not this"])
    second = next(i for i, c in enumerate(script.chunks) if b" not this" in c.payload())
    script.chunks[second] = Chunk(b"data: {not json\n\n")
    openai_server.enqueue(script)
    seen: list[str] = []
    with pytest.raises(ProviderFailure):
        async for event in OpenAIAdapter().stream(_request(), _creds(openai_server, "/v1")):
            if isinstance(event, TextDelta):
                seen.append(event.text)
    assert seen == ["kept"]


async def test_complete_makes_one_non_streaming_call(openai_server: SSEServer) -> None:
    openai_server.enqueue(completion("Bedtime story ideas"))
    result = await OpenAIAdapter().complete(_request(), _creds(openai_server, "/v1"))
    assert result.text == "Bedtime story ideas"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (30, 5)
    assert "stream" not in openai_server.requests[0].body


@pytest.mark.parametrize(
    ("model", "prefix", "expected"),
    [
        ("gpt-5.5", "/v1", {"reasoning_effort": "low", "max_completion_tokens": 1024}),
        ("gpt-4.1-mini", "/v1", {"max_tokens": 40}),
        (OR_MODEL, "/api/v1", {"reasoning": {"enabled": False}, "max_tokens": 40}),
    ],
)
async def test_a_title_call_asks_for_as_little_reasoning_as_the_model_allows(
    all_providers: SSEServer, model: str, prefix: str, expected: dict[str, Any]
) -> None:
    from chat.titles import title_request
    from providers.catalogue import find_model

    info = find_model(model)
    assert info is not None
    all_providers.enqueue(completion("A title", model=model))
    adapter = registry.adapter("openrouter" if prefix == "/api/v1" else "openai")
    request = title_request(info, "Question?", "Answer.")
    await adapter.complete(request, _creds(all_providers, prefix))
    body = all_providers.requests[0].body
    assert body == body | expected
    assert "reasoning_effort" in expected or "reasoning_effort" not in body


# --- OpenRouter ----------------------------------------------------------------------------------


async def test_openrouter_ignores_comments_and_prices_with_its_reported_cost(
    openrouter_server: SSEServer,
) -> None:
    openrouter_server.enqueue(
        text_reply(["A", "B", "C", "D"], model=OR_MODEL, comments=True, cost=0.00123)
    )
    events = await openrouter_events(openrouter_server)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "ABCD"
    stop = events[-1]
    assert isinstance(stop, MessageStop) and stop.usage.cost_usd == pytest.approx(0.00123)
    assert any(isinstance(e, UsageUpdate) for e in events)


async def test_openrouter_gets_its_base_url_and_identifying_headers(
    openrouter_server: SSEServer,
) -> None:
    openrouter_server.enqueue(text_reply(["ok"], model=OR_MODEL))
    await openrouter_events(openrouter_server)
    request = openrouter_server.requests[0]
    assert request.path == "/api/v1/chat/completions"
    assert request.headers["http-referer"] == "https://chat.example.test"
    assert request.headers["x-openrouter-title"] == "Chatsite tests"
    assert request.headers["x-title"] == "Chatsite tests"
    # OpenRouter's models take `max_tokens`; a thinking model is asked for its reasoning.
    assert request.body["max_tokens"] == 512
    assert request.body["reasoning"] == {"enabled": True}


async def test_openrouter_reasoning_streams_as_thinking(openrouter_server: SSEServer) -> None:
    openrouter_server.enqueue(
        text_reply(["Answer."], model=OR_MODEL, reasoning=["Let me ", "think."])
    )
    events = await openrouter_events(openrouter_server)
    assert [e.text for e in events if isinstance(e, ThinkingDelta)] == ["Let me ", "think."]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Answer."]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"code": 502, "message": "Provider returned error"}, Unavailable),
        ({"code": 429, "message": "Rate limited upstream"}, RateLimited),
        ({"code": "server_error", "message": "Provider disconnected"}, ProviderFailure),
    ],
)
async def test_openrouter_error_chunks_mid_stream_are_mapped(
    openrouter_server: SSEServer, error: dict[str, Any], expected: type[ProviderError]
) -> None:
    openrouter_server.enqueue(
        text_reply(["Half"], model=OR_MODEL, error_after=1, error=error, cost=0.0)
    )
    assert type(await _error_of(openrouter_events(openrouter_server))) is expected


async def test_openrouter_out_of_credits_is_a_clear_error(openrouter_server: SSEServer) -> None:
    openrouter_server.enqueue(error_response(402, "Insufficient credits", code=402))
    error = await _error_of(openrouter_events(openrouter_server))
    assert isinstance(error, QuotaExceeded) and "credit" in error.message
