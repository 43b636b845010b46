"""The provider-neutral stream: the only event types the rest of the app sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

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


@dataclass(slots=True, frozen=True)
class TextDelta:
    text: str


@dataclass(slots=True, frozen=True)
class ThinkingDelta:
    text: str


@dataclass(slots=True, frozen=True)
class ThinkingSignature:
    """The provider's signature of a thinking block: kept with the message, never shown."""

    signature: str


@dataclass(slots=True, frozen=True)
class ToolUse:
    """A tool-use block began; the chat does not run tools, but the reply must go on."""

    name: str


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
    MessageStart
    | TextDelta
    | ThinkingDelta
    | ThinkingSignature
    | ToolUse
    | UsageUpdate
    | MessageStop
)
