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
