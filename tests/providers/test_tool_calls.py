"""Tool calls at the wire, through the real SDKs against the fake servers: Anthropic's
`tool_use` blocks (input as `input_json_delta` pieces) and Chat Completions' `tool_calls`
deltas (OpenAI, OpenRouter) become complete `ToolCall`s; any split of a call's input gives the
same input; several calls in one round; input that is not a JSON object is said, not raised;
and a request with tools offers them in each provider's format."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.anthropic import AnthropicAdapter
from providers.base import ChatMessage, ChatRequest, Credentials, ToolSpec
from providers.events import MessageStop, TextDelta, ToolCall
from providers.openai import OpenAIAdapter
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import openai as fake_openai
from tests.fakes.sse_server import SSEServer

WEATHER = ToolSpec(
    name="get_weather",
    description="The weather in a city.",
    input_schema={"type": "object", "properties": {"city": {"type": "string"}}},
)


def _request(model: str) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[ChatMessage("user", "Weather in Paris and Rome?")],
        max_tokens=500,
        tools=[WEATHER],
    )


async def _anthropic(server: SSEServer) -> list[Any]:
    credentials = Credentials(api_key="sk-ant-test-0000000000000000", base_url=server.url)
    adapter = AnthropicAdapter()
    return [e async for e in adapter.stream(_request("claude-sonnet-5-5"), credentials)]


async def _openai(server: SSEServer) -> list[Any]:
    credentials = Credentials(api_key="sk-test-000000000000000000", base_url=server.url + "/v1")
    return [e async for e in OpenAIAdapter().stream(_request("gpt-5.5"), credentials)]


def _splits(text: str) -> st.SearchStrategy[list[str]]:
    """`text` cut into pieces anywhere (empty pieces too, as streams send them)."""
    return st.lists(st.integers(0, len(text)), max_size=8).map(
        lambda cuts: [
            text[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(text)], strict=True)
        ]
    )


INPUT = {"city": "Paris — 巴黎 🌧", "days": [1, 2, 3], "units": {"temp": "C"}, "ok": True}
INPUT_TEXT = json.dumps(INPUT, ensure_ascii=False)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pieces=_splits(INPUT_TEXT))
async def test_any_split_of_an_anthropic_call_s_input_gives_the_same_input(
    anthropic_server: SSEServer, pieces: list[str]
) -> None:
    anthropic_server.enqueue(
        fake_anthropic.text_reply(["Checking."], calls=[("toolu_1", "get_weather", pieces)])
    )
    events = await _anthropic(anthropic_server)
    assert [e for e in events if isinstance(e, ToolCall)] == [
        ToolCall("toolu_1", "get_weather", INPUT)
    ]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pieces=_splits(INPUT_TEXT))
async def test_any_split_of_a_chat_completions_call_s_arguments_gives_the_same_input(
    openai_server: SSEServer, pieces: list[str]
) -> None:
    openai_server.enqueue(
        fake_openai.text_reply(["Checking."], calls=[("call_1", "get_weather", pieces)])
    )
    events = await _openai(openai_server)
    assert [e for e in events if isinstance(e, ToolCall)] == [
        ToolCall("call_1", "get_weather", INPUT)
    ]


async def test_several_calls_in_one_round_after_thinking_and_text(
    anthropic_server: SSEServer, openai_server: SSEServer
) -> None:
    calls = [
        ("c1", "get_weather", ['{"city":', ' "Paris"}']),
        ("c2", "get_weather", ['{"city": "Rome"}']),
        ("c3", "current_time", []),  # no input at all: {}
    ]
    anthropic_server.enqueue(
        fake_anthropic.text_reply(["Both."], thinking=["Two cities."], calls=calls)
    )
    openai_server.enqueue(fake_openai.text_reply(["Both."], reasoning=["Two."], calls=calls))
    for events in (await _anthropic(anthropic_server), await _openai(openai_server)):
        assert [e for e in events if isinstance(e, ToolCall)] == [
            ToolCall("c1", "get_weather", {"city": "Paris"}),
            ToolCall("c2", "get_weather", {"city": "Rome"}),
            ToolCall("c3", "current_time", {}),
        ]
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Both."
        stop = events[-1]
        assert isinstance(stop, MessageStop) and stop.stop_reason == "tool_use"


async def test_input_that_is_not_a_json_object_is_said_not_raised(
    anthropic_server: SSEServer, openai_server: SSEServer
) -> None:
    calls = [("bad1", "get_weather", ['{"city": "Par']), ("bad2", "get_weather", ["[1, 2]"])]
    anthropic_server.enqueue(fake_anthropic.text_reply(["Hm."], calls=calls))
    openai_server.enqueue(fake_openai.text_reply(["Hm."], calls=calls))
    for events in (await _anthropic(anthropic_server), await _openai(openai_server)):
        found = [e for e in events if isinstance(e, ToolCall)]
        assert [(c.call_id, c.input) for c in found] == [("bad1", None), ("bad2", None)]
        assert found[0].problem == "The tool input was not valid JSON."
        assert found[1].problem == "The tool input was not a JSON object."
        assert isinstance(events[-1], MessageStop)


async def test_the_tools_are_offered_in_each_provider_s_format(
    anthropic_server: SSEServer, openai_server: SSEServer
) -> None:
    # (One fake server plays both providers: each request is looked at after its own call.)
    anthropic_server.enqueue(fake_anthropic.text_reply(["Hi."]))
    await _anthropic(anthropic_server)
    assert anthropic_server.requests[-1].body["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": WEATHER.input_schema,
        }
    ]
    openai_server.enqueue(fake_openai.text_reply(["Hi."]))
    await _openai(openai_server)
    assert openai_server.requests[-1].body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER.input_schema,
            },
        }
    ]
    # Without tools, none are offered.
    anthropic_server.enqueue(fake_anthropic.text_reply(["Hi."]))
    credentials = Credentials(api_key="sk-ant-test-0000000000000000", base_url=anthropic_server.url)
    plain = ChatRequest("claude-sonnet-5-5", [ChatMessage("user", "Hi")], 100)
    [e async for e in AnthropicAdapter().stream(plain, credentials)]
    assert "tools" not in anthropic_server.requests[-1].body
