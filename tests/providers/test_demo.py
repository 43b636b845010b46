from __future__ import annotations

from providers.base import ChatMessage, ChatRequest, Credentials
from providers.demo import DemoAdapter
from providers.events import MessageStop, TextDelta


async def _run(max_tokens: int) -> tuple[str, MessageStop]:
    request = ChatRequest("demo", [ChatMessage("user", "What is a monad?")], max_tokens)
    events = [e async for e in DemoAdapter().stream(request, Credentials(api_key=""))]
    stop = events[-1]
    assert isinstance(stop, MessageStop)
    return "".join(e.text for e in events if isinstance(e, TextDelta)), stop


async def test_demo_streams_a_deterministic_markdown_reply_with_usage() -> None:
    text, stop = await _run(4096)
    again, _ = await _run(4096)
    assert text == again
    assert "What is a monad?" in text and "```python" in text and "## " in text
    assert text.count("\n\n") >= 3
    assert stop.stop_reason == "end_turn"
    assert stop.usage.input_tokens > 0 and stop.usage.output_tokens > 50


async def test_demo_honours_max_tokens() -> None:
    text, stop = await _run(10)
    full, _ = await _run(4096)
    assert full.startswith(text) and len(text) < len(full)
    assert stop.usage.output_tokens == 10
    assert stop.stop_reason == "max_tokens"


async def _events(prompt: str) -> list[object]:
    request = ChatRequest("demo", [ChatMessage("user", prompt)], 4096)
    return [e async for e in DemoAdapter().stream(request, Credentials(api_key=""))]


def _text(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_the_demo_shows_a_table_code_a_long_answer_or_a_short_one_as_asked() -> None:
    table = _text(await _events("Compare the two databases in a table"))
    assert "|---|" in table and table.count("\n|") >= 4
    code = _text(await _events("Write some code for me"))
    assert [f in code for f in ("```python", "```javascript", "```sql", "```rust")] == [True] * 4
    long = _text(await _events("Tell me a long story about bread"))
    assert long.count("## Part") == 10 and len(long) > 2_000
    short = _text(await _events("Hello there"))
    assert len(short) < 300 and "demo model" in short


async def test_the_demo_thinks_first_when_asked_why() -> None:
    from providers.events import ThinkingDelta

    events = await _events("Why is the sky blue?")
    kinds = [type(e).__name__ for e in events if isinstance(e, ThinkingDelta | TextDelta)]
    assert kinds[0] == "ThinkingDelta" and kinds[-1] == "TextDelta"
    assert kinds.index("TextDelta") == kinds.count("ThinkingDelta")  # all thinking comes first
    stop = events[-1]
    assert isinstance(stop, MessageStop) and stop.usage.output_tokens == len(kinds)


async def test_the_demo_fails_mid_stream_when_asked_for_an_error() -> None:
    import pytest

    from providers.errors import Overloaded

    request = ChatRequest("demo", [ChatMessage("user", "Show me an error")], 4096)
    received: list[str] = []
    with pytest.raises(Overloaded):
        async for event in DemoAdapter().stream(request, Credentials(api_key="")):
            if isinstance(event, TextDelta):
                received.append(event.text)
    assert len(received) == 24 and "".join(received).startswith("You asked for an error")
