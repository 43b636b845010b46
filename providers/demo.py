"""The offline `demo` model: local, deterministic, paced like a real provider."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator

from django.conf import settings

from providers.base import ChatRequest, Completion, Credentials
from providers.events import MessageStart, MessageStop, StreamEvent, TextDelta, Usage

_TOKEN = re.compile(r"\s*\S+|\s+")

_OPENINGS = (
    "Good question. Here is how I would think about it.",
    "Let me walk through this step by step.",
    "Here is a short, structured answer.",
)
_POINTS = (
    "Start from what you already know and write it down.",
    "Split the problem into parts small enough to check on their own.",
    "Test each part before you join them together.",
    "Keep notes of what you tried, so you never repeat a dead end.",
    "Ask what would change your mind, and look for exactly that.",
    "Prefer the simple explanation until the facts rule it out.",
)


def compose_reply(prompt: str) -> str:
    """A plausible multi-paragraph markdown answer, the same for the same prompt."""
    seed = int.from_bytes(hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()[:4])
    quoted = " ".join(prompt.split())
    if len(quoted) > 80:
        quoted = quoted[:77] + "..."
    points = [_POINTS[(seed + i * 5) % len(_POINTS)] for i in range(3)]
    return (
        f"{_OPENINGS[seed % len(_OPENINGS)]}\n\n"
        f"You asked: *{quoted or 'nothing in particular'}*. I am the **demo model**, so I run "
        "offline and cannot really read your message, but I stream like a real one, token by "
        "token, so you can see how the chat behaves.\n\n"
        "## A few general points\n\n"
        + "".join(f"{n}. {p}\n" for n, p in enumerate(points, 1))
        + "\nA small example in code:\n\n"
        "```python\ndef answer(question: str) -> str:\n"
        '    return f"Thinking about {question!r}..."\n```\n\n'
        "Set `ANTHROPIC_API_KEY` (or add your own key) and pick a Claude model for real answers."
    )


def split_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _input_tokens(request: ChatRequest) -> int:
    return sum(len(m.content) for m in request.messages) // 4 + 1


class DemoAdapter:
    def __init__(self, name: str = "demo") -> None:
        self.name = name

    async def stream(
        self, request: ChatRequest, credentials: Credentials
    ) -> AsyncIterator[StreamEvent]:
        prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        tokens = split_tokens(compose_reply(prompt))
        truncated = len(tokens) > request.max_tokens
        tokens = tokens[: request.max_tokens]
        input_tokens = _input_tokens(request)
        yield MessageStart(model=request.model)
        loop = asyncio.get_running_loop()
        interval = 1.0 / settings.DEMO_TOKENS_PER_SECOND
        started = loop.time()
        for index, token in enumerate(tokens):
            # Pace against the start time so the rate does not drift with scheduling delays.
            delay = started + index * interval - loop.time()
            await asyncio.sleep(max(0.0, delay))
            yield TextDelta(token)
        yield MessageStop(
            stop_reason="max_tokens" if truncated else "end_turn",
            usage=Usage(input_tokens=input_tokens, output_tokens=len(tokens)),
        )

    async def complete(self, request: ChatRequest, credentials: Credentials) -> Completion:
        """A title made locally: the first words of the conversation's first message. No model
        ran, so it used no tokens and costs nothing."""
        first = next((m.content for m in request.messages if m.role == "user"), "")
        title = " ".join(first.split()[:6]).strip(" .,:;!?")
        return Completion(text=title, usage=Usage())
