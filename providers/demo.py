"""The offline `demo` model: local, deterministic, paced like a real provider."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from django.conf import settings

from providers.base import ChatRequest, Completion, Credentials
from providers.errors import Overloaded
from providers.events import (
    MessageStart,
    MessageStop,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    Usage,
)

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


@dataclass(frozen=True, slots=True)
class Answer:
    """What the demo model says to a prompt: its visible thinking, its text, (on request) how
    many tokens in it fails as a provider does mid-stream, and the tool call it then asks for."""

    text: str
    thinking: str = ""
    fail_after: int | None = None
    call: ToolCall | None = None


# An arithmetic expression in a prompt: digits, operators and parentheses, with an operator.
_EXPRESSION = re.compile(r"[\d(][\d\s.+\-*/^%()]*[\d)]")
_OPERATOR = re.compile(r"\d\s*[-+*/^%]\s*[\d(]")
_CALCULATE = {"calculate", "calculator", "compute", "sum", "multiply", "tool", "tools"}
_CLOCK = re.compile(r"\b(what time|the time|clock|today's date|what day)\b", re.IGNORECASE)


def _tool_answer(request: ChatRequest, prompt: str, words: set[str]) -> Answer | None:
    """With tools offered, a prompt that asks for a sum or the time gets a tool call (and, in
    the next round, an answer from its result)."""
    offered = {tool.name for tool in request.tools}
    if request.rounds:
        return Answer(text=_from_results(request))
    expressions = [e for e in _EXPRESSION.findall(prompt) if _OPERATOR.search(e)]
    if "calculator" in offered and (expressions or words & _CALCULATE):
        expression = max(expressions, key=len).strip() if expressions else "1234 * 5678"
        call = ToolCall(f"demo-{_seed(prompt):x}", "calculator", {"expression": expression})
        return Answer(text="I will work that out exactly with the calculator.", call=call)
    if "current_time" in offered and _CLOCK.search(prompt):
        call = ToolCall(f"demo-{_seed(prompt):x}", "current_time", {"time_zone": "UTC"})
        return Answer(text="Let me look at the clock.", call=call)
    return None


def _from_results(request: ChatRequest) -> str:
    last = request.rounds[-1]
    lines = []
    for call, outcome in zip(last.calls, last.outcomes, strict=False):
        if outcome.is_error:
            lines.append(f"The `{call.name}` tool could not answer: {outcome.content}")
        else:
            lines.append(f"The `{call.name}` tool says: **{outcome.content.strip()}**")
    return "\n\n".join(lines) + "\n\nThat is what the tool gave (the demo model's answer)."


def compose(prompt: str, request: ChatRequest | None = None) -> Answer:
    """An answer that shows a feature of the chat, chosen by the prompt's words (README: "The
    demo model"), the same for the same prompt."""
    words = set(re.findall(r"[a-z]+", prompt.lower()))
    if request is not None and request.tools:
        answer = _tool_answer(request, prompt, words)
        if answer is not None:
            return answer
    if words & {"error", "fail", "failure", "crash"}:
        return Answer(text=_error_text(), fail_after=24)
    if words & {"think", "thinking", "reason", "reasoning", "why"}:
        return Answer(text=compose_reply(prompt), thinking=_thinking(prompt))
    if words & {"table", "tables", "compare", "comparison", "versus", "vs"}:
        return Answer(text=_table(prompt))
    if words & {"code", "function", "program", "script", "python", "javascript", "sql", "rust"}:
        return Answer(text=_code())
    if words & {"long", "story", "essay", "detail", "detailed"}:
        return Answer(text=_long(prompt))
    if len(prompt.split()) <= 3:
        return Answer(text=_short(prompt))
    return Answer(text=compose_reply(prompt))


def _seed(prompt: str) -> int:
    return int.from_bytes(hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()[:4])


def _quoted(prompt: str) -> str:
    quoted = " ".join(prompt.split())
    return quoted[:77] + "..." if len(quoted) > 80 else quoted


def compose_reply(prompt: str) -> str:
    """A plausible multi-paragraph markdown answer, the same for the same prompt."""
    seed = _seed(prompt)
    points = [_POINTS[(seed + i * 5) % len(_POINTS)] for i in range(3)]
    return (
        f"{_OPENINGS[seed % len(_OPENINGS)]}\n\n"
        f"You asked: *{_quoted(prompt) or 'nothing in particular'}*. I am the **demo model**, so "
        "I run offline and cannot really read your message, but I stream like a real one, token "
        "by token, so you can see how the chat behaves.\n\n"
        "## A few general points\n\n"
        + "".join(f"{n}. {p}\n" for n, p in enumerate(points, 1))
        + "\nA small example in code:\n\n"
        "```python\ndef answer(question: str) -> str:\n"
        '    return f"Thinking about {question!r}..."\n```\n\n'
        "Set `ANTHROPIC_API_KEY` (or add your own key) and pick a Claude model for real answers."
    )


def _short(prompt: str) -> str:
    return (
        f"Hello! I am the **demo model**: I run offline and answer *{_quoted(prompt)}* briefly. "
        "Ask me for a table, some code, a long answer, my thinking or an error to see more."
    )


def _thinking(prompt: str) -> str:
    return (
        f"The question is: {_quoted(prompt)}. I am the demo model, so this thinking is a "
        "stand-in, streamed before the answer as a real model's would be. First I would list "
        "what is known, then what is asked, then check each step against the other. "
        "That gives the structure of the answer below."
    )


def _table(prompt: str) -> str:
    return (
        f"Here is a comparison for *{_quoted(prompt)}* (the demo model's sample data):\n\n"
        "| | PostgreSQL | SQLite |\n"
        "|---|:---:|:---:|\n"
        "| Runs as | a server | a file in your process |\n"
        "| Many writers at once | yes | one at a time |\n"
        "| Setup | install and configure | nothing |\n"
        "| Best for | sites with many users | development, small sites, devices |\n\n"
        "| Size limit | PostgreSQL | SQLite |\n"
        "|:---|---:|---:|\n"
        "| Largest database | unlimited | 281 TB |\n"
        "| Largest row | 1.6 TB | 1 GB |\n\n"
        "> Tables scroll inside the message when they are wider than the screen."
    )


def _code() -> str:
    return (
        "The same function in four languages (the demo model's sample):\n\n"
        "```python\ndef is_palindrome(text: str) -> bool:\n"
        "    letters = [c.lower() for c in text if c.isalnum()]\n"
        "    return letters == letters[::-1]  # the same both ways\n```\n\n"
        "```javascript\nfunction isPalindrome(text) {\n"
        "  const letters = text.toLowerCase().replace(/[^a-z0-9]/g, '');\n"
        "  return letters === [...letters].reverse().join('');\n}\n```\n\n"
        "```sql\nSELECT word FROM words WHERE word = reverse(word);\n```\n\n"
        "```rust\nfn is_palindrome(text: &str) -> bool {\n"
        "    let letters: Vec<char> = text.chars().filter(|c| c.is_alphanumeric()).collect();\n"
        "    letters.iter().eq(letters.iter().rev())\n}\n```\n\n"
        "Each block has a **Copy** button."
    )


def _long(prompt: str) -> str:
    seed = _seed(prompt)
    paragraphs = [
        f"## Part {n}\n\n" + " ".join(_POINTS[(seed + n + i) % len(_POINTS)] for i in range(4))
        for n in range(1, 11)
    ]
    return (
        f"A long answer to *{_quoted(prompt)}*, so you can watch a reply stream for a while "
        "(Stop, or Escape, ends it where it is).\n\n" + "\n\n".join(paragraphs)
    )


def _error_text() -> str:
    return (
        "You asked for an error, so this reply will stop part of the way through, as a real "
        "provider sometimes does when it is overloaded. What was written stays, and Retry "
        "offers another attempt."
    )


def split_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _input_tokens(request: ChatRequest) -> int:
    rounds = sum(
        len(done.text) + sum(len(outcome.content) for outcome in done.outcomes)
        for done in request.rounds
    )
    return (sum(len(m.content) for m in request.messages) + rounds) // 4 + 1


class DemoAdapter:
    def __init__(self, name: str = "demo") -> None:
        self.name = name

    async def stream(
        self, request: ChatRequest, credentials: Credentials
    ) -> AsyncIterator[StreamEvent]:
        prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        answer = compose(prompt, request)
        thinking = split_tokens(answer.thinking)
        tokens = split_tokens(answer.text)
        truncated = len(thinking) + len(tokens) > request.max_tokens
        thinking = thinking[: request.max_tokens]
        tokens = tokens[: max(0, request.max_tokens - len(thinking))]
        input_tokens = _input_tokens(request)
        yield MessageStart(model=request.model)
        loop = asyncio.get_running_loop()
        interval = 1.0 / settings.DEMO_TOKENS_PER_SECOND
        started = loop.time()
        paced = [(True, t) for t in thinking] + [(False, t) for t in tokens]
        for index, (thought, token) in enumerate(paced):
            # Pace against the start time so the rate does not drift with scheduling delays.
            delay = started + index * interval - loop.time()
            await asyncio.sleep(max(0.0, delay))
            if not thought and answer.fail_after is not None and index >= answer.fail_after:
                raise Overloaded()  # on request: an error mid-stream, after some text
            yield ThinkingDelta(token) if thought else TextDelta(token)
        if answer.call is not None and not truncated:
            yield answer.call
        yield MessageStop(
            stop_reason="max_tokens" if truncated else "tool_use" if answer.call else "end_turn",
            usage=Usage(input_tokens=input_tokens, output_tokens=len(thinking) + len(tokens)),
        )

    async def complete(self, request: ChatRequest, credentials: Credentials) -> Completion:
        """A title made locally: the first words of the conversation's first message. No model
        ran, so it used no tokens and costs nothing."""
        first = next((m.content for m in request.messages if m.role == "user"), "")
        title = " ".join(first.split()[:6]).strip(" .,:;!?")
        return Completion(text=title, usage=Usage())
