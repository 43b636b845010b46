"""The provider-neutral stream: the only event types the rest of the app sees."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

StopReason: TypeAlias = Literal[
    "end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "content_filter", "other"
]


@dataclass(slots=True)
class Usage:
    """Token counts as the provider reported them (never re-counted from text)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    # Some providers (OpenRouter) report what the call cost them, in USD.
    cost_usd: float | None = None


@dataclass(slots=True, frozen=True)
class MessageStart:
    model: str
    # The provider's id of the response (traces name it), when it gives one.
    id: str = ""


@dataclass(slots=True, frozen=True)
class TextDelta:
    text: str


@dataclass(slots=True, frozen=True)
class ThinkingDelta:
    text: str


@dataclass(slots=True, frozen=True)
class ThinkingBlock:
    """A finished thinking block as the provider must be sent it again within a tool loop
    (Anthropic's `thinking` with its signature, or `redacted_thinking`; OpenRouter's
    `reasoning_details`): opaque to all but its adapter. Its signature is kept with the
    message, never shown."""

    block: dict[str, Any]

    @property
    def signature(self) -> str:
        signature = self.block.get("signature")
        return signature if isinstance(signature, str) else ""


@dataclass(slots=True, frozen=True)
class ToolCall:
    """A call of one of the request's tools, its input complete (streamed in pieces, read once
    its block ended). `input` is None when the pieces did not make a JSON object; `problem`
    then says so, for the model (tools/registry.py reports it as an error result)."""

    call_id: str
    name: str
    input: dict[str, Any] | None
    problem: str = ""


def tool_call(call_id: str, name: str, pieces: list[str]) -> ToolCall:
    """The call whose input arrived in `pieces` of JSON text (no pieces: no input, `{}`)."""
    text = "".join(pieces).strip() or "{}"
    try:
        value = json.loads(text)
    except ValueError:
        return ToolCall(call_id, name, None, "The tool input was not valid JSON.")
    if not isinstance(value, dict):
        return ToolCall(call_id, name, None, "The tool input was not a JSON object.")
    return ToolCall(call_id, name, value)


@dataclass(slots=True, frozen=True)
class UsageUpdate:
    """Running usage figures; later ones replace earlier ones."""

    usage: Usage


@dataclass(slots=True, frozen=True)
class MessageStop:
    stop_reason: StopReason
    usage: Usage = field(default_factory=Usage)
    # False when the provider ended without reporting its final usage: the bill then estimates.
    final_usage: bool = True


StreamEvent: TypeAlias = (
    MessageStart | TextDelta | ThinkingDelta | ThinkingBlock | ToolCall | UsageUpdate | MessageStop
)
