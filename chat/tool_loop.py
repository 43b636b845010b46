"""A reply's tool loop: the calls it asked for, as the page and the database see them, and
running one round's calls.

A round is one provider call. When it ends asking for tools, its calls run (in parallel), each
result goes to the tabs as it comes, and the next round is called with them, streaming into the
same reply (chat/runner.py). Between two rounds, one transaction bills the round that ended,
saves the reply's text and calls, and holds the next round's coins
(`services.reply_round_next`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings

from chat import tracing
from providers.base import ToolOutcome
from providers.errors import ProviderError
from providers.events import ToolCall
from tools.offer import Toolbox
from tools.registry import ToolResult


class NoCoinsForRound(ProviderError):
    """The balance cannot pay for the tool loop's next round: the reply ends with its text."""

    code = "insufficient_coins"
    retryable = False


def limit_note() -> str:
    return (
        f"Not run: this reply reached its limit of {settings.TOOL_ROUNDS_MAX} rounds of tool calls."
    )


def limit_ending() -> str:
    """What a reply that reached the round limit says under it (the page writes the same)."""
    return (
        f"The model asked for more tools after {settings.TOOL_ROUNDS_MAX} rounds, the most one "
        "reply may use, so the reply ends here."
    )


class Calls:
    """A reply's tool calls in order: each its `tool_call` frame's fields, its round and, once
    it ran, its `result` (what `message_snapshot` carries and `Message.tools` keeps)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._by_id: dict[str, dict[str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self.items)

    def asked(self, call: ToolCall, *, offset: int, round: int) -> tuple[ToolCall, dict[str, Any]]:
        """A call the model asked for, with an id no other call of the reply has (a provider
        that repeats or omits one gets it renamed, so each result answers exactly one call)."""
        call_id = call.call_id or f"call_{len(self.items)}"
        while call_id in self._by_id:
            call_id = f"{call_id}_{len(self.items)}"
        if call_id != call.call_id:
            call = ToolCall(call_id, call.name, call.input, call.problem)
        item = {
            "call_id": call_id,
            "name": call.name,
            "input": call.input if call.input is not None else {},
            "offset": offset,
            "round": round,
            "result": None,
        }
        self.items.append(item)
        self._by_id[call_id] = item
        return call, item

    def ran(self, call_id: str, result: ToolResult) -> dict[str, Any]:
        outcome = {
            "is_error": result.is_error,
            "content": result.content,
            "duration_ms": result.duration_ms,
        }
        self._by_id[call_id]["result"] = outcome
        return outcome

    def unfinished(self) -> list[str]:
        """The calls with no result yet."""
        return [item["call_id"] for item in self.items if item["result"] is None]

    def value(self) -> list[dict[str, Any]]:
        return [dict(item) for item in self.items]


async def run_round(toolbox: Toolbox, calls: list[ToolCall], on_result: Any) -> list[ToolOutcome]:
    """Run a round's calls in parallel (at most TOOL_CALLS_PER_ROUND_MAX; the rest are
    answered as errors); `on_result(call_id, result)` as each ends. Cancelling it (Stop)
    cancels every call still running."""
    allowed = settings.TOOL_CALLS_PER_ROUND_MAX

    async def one(number: int, call: ToolCall) -> ToolOutcome:
        if number >= allowed:
            result = ToolResult(
                f"Not run: at most {allowed} tool calls run in one round.", is_error=True
            )
        else:
            span, ran = tracing.ToolSpan(call), None
            try:
                # Current while it runs: the MCP SDK's span of a server's call nests under it.
                with tracing.current(span.span):
                    result = ran = await toolbox.run(call)
            finally:
                span.ended(ran)
        on_result(call.call_id, result)
        return ToolOutcome(call.call_id, result.content, result.is_error)

    return list(await asyncio.gather(*(one(n, call) for n, call in enumerate(calls))))
