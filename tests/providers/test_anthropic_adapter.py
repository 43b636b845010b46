"""The Anthropic adapter against a local server streaming Anthropic's documented SSE events."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from typing import Any

import pytest

from providers.anthropic import AnthropicAdapter, _noted_deprecations
from providers.base import ChatMessage, ChatRequest, Credentials
from providers.catalogue import find_model
from providers.errors import (
    AuthError,
    ByokAuthError,
    ContextTooLong,
    ModelNotFound,
    Overloaded,
    ProviderFailure,
    RateLimited,
    Unavailable,
)
from providers.events import (
    MessageStart,
    MessageStop,
    StreamEvent,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolCall,
    UsageUpdate,
)
from tests.fakes.anthropic import error_response, text_reply
from tests.fakes.sse_server import Chunk, Script, SSEServer, sse

REQUEST = ChatRequest(
    model="claude-sonnet-5-5",
    messages=[
        ChatMessage("user", "Hello"),
        ChatMessage("assistant", "Hi! How can I help?"),
        ChatMessage("user", "Tell me a story"),
    ],
    max_tokens=512,
)


def creds(server: SSEServer, byok: bool = False) -> Credentials:
    return Credentials(api_key="sk-ant-test-key-1234", base_url=server.url, byok=byok)


async def collect(
    server: SSEServer, request: ChatRequest = REQUEST, **kw: Any
) -> list[StreamEvent]:
    return [event async for event in AnthropicAdapter().stream(request, creds(server, **kw))]


async def test_streams_text_and_usage_from_documented_events(anthropic_server: SSEServer) -> None:
    anthropic_server.enqueue(
        text_reply(["Once", " upon", " a time."], input_tokens=42, output_tokens=7)
    )
    events = await collect(anthropic_server)
    assert events[0] == MessageStart(model="claude-sonnet-5-5", id="msg_fake")
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Once", " upon", " a time."]
    stop = events[-1]
    assert isinstance(stop, MessageStop)
    assert stop.stop_reason == "end_turn"
    # message_delta's output count is a running total: assigned, not added to message_start's 1.
    assert (stop.usage.input_tokens, stop.usage.output_tokens) == (42, 7)


async def test_sends_the_whole_history_with_max_tokens_and_key(anthropic_server: SSEServer) -> None:
    anthropic_server.enqueue(text_reply(["ok"]))
    await collect(anthropic_server)
    request = anthropic_server.requests[0]
    assert request.path == "/v1/messages"
    assert request.body["model"] == "claude-sonnet-5-5"
    assert request.body["max_tokens"] == 512
    assert request.body["stream"] is True
    assert [m["role"] for m in request.body["messages"]] == ["user", "assistant", "user"]
    assert "sk-ant-test-key-1234" in (
        request.headers.get("x-api-key", "") + request.headers.get("authorization", "")
    )


async def test_thinking_block_streams_as_thinking_and_keeps_its_signature_apart(
    anthropic_server: SSEServer,
) -> None:
    anthropic_server.enqueue(text_reply(["Answer."], thinking=["Let me ", "think."]))
    events = await collect(anthropic_server)
    assert [e.text for e in events if isinstance(e, ThinkingDelta)] == ["Let me ", "think."]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Answer."]
    # The block with its signature is its own event (saved server-side, sent back within a
    # tool loop), never part of a visible text.
    blocks = [e for e in events if isinstance(e, ThinkingBlock)]
    assert blocks == [
        ThinkingBlock({"type": "thinking", "thinking": "Let me think.", "signature": "c2ln"})
    ]
    assert blocks[0].signature == "c2ln"
    visible = [e.text for e in events if isinstance(e, TextDelta | ThinkingDelta)]
    assert not any("c2ln" in text for text in visible)


@pytest.mark.parametrize(
    ("model", "max_tokens", "expected"),
    [
        ("claude-sonnet-5-5", 512, {"type": "adaptive", "display": "summarized"}),
        ("claude-sonnet-4-5-20250929", 16_000, {"type": "enabled", "budget_tokens": 4096}),
        # Too small a reply for the 1,024-token minimum budget: no thinking asked for.
        ("claude-sonnet-4-5-20250929", 1_500, None),
        ("claude-haiku-5-5", 8_000, None),
    ],
)
async def test_thinking_is_asked_for_the_way_each_model_takes_it(
    anthropic_server: SSEServer, model: str, max_tokens: int, expected: dict[str, Any] | None
) -> None:
    anthropic_server.enqueue(text_reply(["ok"], model=model))
    request = ChatRequest(model=model, messages=[ChatMessage("user", "Hi")], max_tokens=max_tokens)
    await collect(anthropic_server, request)
    sent = anthropic_server.requests[0].body.get("thinking")
    if expected is None:
        assert sent is None
    else:
        assert sent is not None and expected.items() <= sent.items()
        assert sent.get("budget_tokens", 0) < max_tokens


async def test_tool_use_block_is_survived_and_the_reply_completes(
    anthropic_server: SSEServer,
) -> None:
    anthropic_server.enqueue(text_reply(["Let me check."], tool_use=True, output_tokens=30))
    events = await collect(anthropic_server)
    assert ToolCall("toolu_fake", "get_weather", {"city": "Paris"}) in events
    stop = events[-1]
    assert isinstance(stop, MessageStop)
    assert stop.stop_reason == "tool_use"
    assert stop.usage.output_tokens == 30


async def test_unknown_event_types_are_ignored(anthropic_server: SSEServer) -> None:
    script = text_reply(["a", "b"])
    script.chunks.insert(2, Chunk(sse("brand_new_event", {"type": "brand_new_event", "x": 1})))
    anthropic_server.enqueue(script)
    events = await collect(anthropic_server)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "ab"


async def test_events_split_across_reads_and_crlf_line_ends_decode_whole(
    anthropic_server: SSEServer,
) -> None:
    script = text_reply(["whole"])
    split = sse(
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": " and split"},
        },
    )
    crlf = split.replace(b" and split", b", crlf").replace(b"\n", b"\r\n")
    at = len(split) // 2
    stop = next(i for i, c in enumerate(script.chunks) if b"content_block_stop" in c.payload())
    script.chunks[stop:stop] = [Chunk(split[:at]), Chunk(split[at:], 0.02), Chunk(crlf)]
    anthropic_server.enqueue(script)
    events = await collect(anthropic_server)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "whole and split, crlf"
    assert isinstance(events[-1], MessageStop)


async def test_an_unreadable_event_mid_stream_is_a_provider_error_after_the_partial_text(
    anthropic_server: SSEServer,
) -> None:
    script = text_reply(["kept", " not this"])
    second = next(i for i, c in enumerate(script.chunks) if b" not this" in c.payload())
    script.chunks[second] = Chunk(b"event: content_block_delta\ndata: {not json\n\n")
    anthropic_server.enqueue(script)
    seen: list[str] = []
    with pytest.raises(ProviderFailure) as info:
        async for event in AnthropicAdapter().stream(REQUEST, creds(anthropic_server)):
            if isinstance(event, TextDelta):
                seen.append(event.text)
    assert seen == ["kept"]
    assert "{" not in str(info.value)


async def test_consecutive_replies_reuse_one_connection_to_the_provider(
    anthropic_server: SSEServer,
) -> None:
    """The body's end comes after `message_stop` (here 50 ms later): read to it, the connection
    goes back to the pool instead of each reply paying a new TCP and TLS handshake."""
    for n in range(3):
        script = text_reply([f"reply {n}"])
        script.hang = 0.05
        anthropic_server.enqueue(script)
        events = await collect(anthropic_server)
        assert isinstance(events[-1], MessageStop)
    assert len({r.connection for r in anthropic_server.requests}) == 1


async def test_an_event_of_the_wrong_shape_is_skipped_and_the_reply_goes_on(
    anthropic_server: SSEServer,
) -> None:
    script = text_reply(["before", " after"])
    second = next(i for i, c in enumerate(script.chunks) if b" after" in c.payload())
    odd = sse("content_block_delta", {"type": "content_block_delta", "delta": "not an object"})
    script.chunks.insert(second, Chunk(odd))
    anthropic_server.enqueue(script)
    events = await collect(anthropic_server)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "before after"
    assert isinstance(events[-1], MessageStop)


async def test_usage_updates_arrive_before_the_stop(anthropic_server: SSEServer) -> None:
    anthropic_server.enqueue(text_reply(["x"], output_tokens=3))
    events = await collect(anthropic_server)
    updates = [e for e in events if isinstance(e, UsageUpdate)]
    assert updates and updates[-1].usage.output_tokens == 3


async def test_error_event_mid_stream_raises_overloaded_after_the_partial_text(
    anthropic_server: SSEServer,
) -> None:
    anthropic_server.enqueue(text_reply(["one", " two", " three"], error_after=2))
    seen: list[str] = []
    with pytest.raises(Overloaded) as info:
        async for event in AnthropicAdapter().stream(REQUEST, creds(anthropic_server)):
            if isinstance(event, TextDelta):
                seen.append(event.text)
    assert seen == ["one", " two"]
    assert info.value.retryable


@pytest.mark.parametrize(
    ("script", "error", "byok"),
    [
        (error_response(401, "authentication_error", "invalid x-api-key"), AuthError, False),
        (error_response(401, "authentication_error", "invalid x-api-key"), ByokAuthError, True),
        (error_response(404, "not_found_error", "model: nope"), ModelNotFound, False),
        (error_response(529, "overloaded_error", "Overloaded"), Overloaded, False),
        (error_response(500, "api_error", "Internal"), ProviderFailure, False),
        (
            error_response(400, "invalid_request_error", "prompt is too long: 1000001 tokens"),
            ContextTooLong,
            False,
        ),
    ],
)
async def test_http_errors_map_to_the_shared_hierarchy(
    anthropic_server: SSEServer, script: Script, error: type[Exception], byok: bool
) -> None:
    anthropic_server.enqueue(script)
    with pytest.raises(error) as info:
        await collect(anthropic_server, byok=byok)
    assert type(info.value) is error
    assert "{" not in str(info.value) and "sk-ant" not in str(info.value)


async def test_rate_limit_carries_retry_after(anthropic_server: SSEServer) -> None:
    anthropic_server.enqueue(
        error_response(429, "rate_limit_error", "slow down", **{"retry-after": "7"})
    )
    with pytest.raises(RateLimited) as info:
        await collect(anthropic_server)
    assert info.value.retry_after == 7.0
    assert "7 s" in str(info.value)


async def test_connection_dropped_mid_stream_is_unavailable(anthropic_server: SSEServer) -> None:
    anthropic_server.enqueue(text_reply(["a", "b", "c"], drop_after=2))
    with pytest.raises(Unavailable):
        await collect(anthropic_server)


async def test_closing_the_iterator_closes_the_upstream_stream(anthropic_server: SSEServer) -> None:
    anthropic_server.enqueue(text_reply([f"w{i} " for i in range(200)], delay=0.01))
    stream = AnthropicAdapter().stream(REQUEST, creds(anthropic_server))
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    recorded = await loop.run_in_executor(None, anthropic_server.wait_for_disconnect, 2.0)
    assert not recorded.completed


async def test_deprecated_model_streams_and_its_end_of_life_is_logged_once(
    anthropic_server: SSEServer, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    """The catalogue's end of life (which tests/providers/test_catalogue.py holds to the
    SDK's) is logged once per process; the model still streams until that day."""
    model_id, successor = "claude-opus-4-5", "claude-opus-5-5"
    retires_on = dt.date.today() + dt.timedelta(days=30)
    model = find_model(model_id)
    assert model is not None
    deprecated = dataclasses.replace(model, retires_on=retires_on, successor=successor)
    monkeypatch.setattr(
        "providers.anthropic.find_model", lambda wanted: deprecated if wanted == model_id else None
    )
    anthropic_server.enqueue(text_reply(["again"], model=model_id))
    anthropic_server.enqueue(text_reply(["still here"], model=model_id))
    request = ChatRequest(model=model_id, messages=REQUEST.messages, max_tokens=5)
    _noted_deprecations.discard(model_id)
    with caplog.at_level(logging.WARNING, logger="providers.anthropic"):
        events = await collect(anthropic_server, request)
        await collect(anthropic_server, request)
    assert isinstance(events[-1], MessageStop)
    notes = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert notes == [
        f"model {model_id} is deprecated: end of life {retires_on}; successor {successor}"
    ]
