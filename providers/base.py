"""What an adapter is given and what it must do."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from providers.events import StreamEvent, ToolCall, Usage


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as a model is offered it (tools/registry.py's `Tool`, without its function)."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What running one call gave, as the model is sent it."""

    call_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ToolRound:
    """One finished round of a reply's tool loop, sent back with the next round: what the model
    wrote (its thinking blocks exactly as the provider sent them, signatures and all, then its
    text), the calls it asked for and what they gave."""

    text: str
    calls: Sequence[ToolCall]
    outcomes: Sequence[ToolOutcome]
    thinking_blocks: Sequence[dict[str, Any]] = ()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: Sequence[ChatMessage]
    max_tokens: int
    system: str | None = None
    # Let a model that can think do so (and stream its thinking); title calls turn it off.
    thinking: bool = True
    # The tools the model may call (none: it is not told of any).
    tools: Sequence[ToolSpec] = ()
    # The reply's tool rounds so far, after `messages` (whose last is the person's).
    rounds: Sequence[ToolRound] = ()


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole non-streaming reply (used for conversation titles)."""

    text: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class Listed:
    """A model as a provider's models endpoint lists it; None where the provider does not say."""

    id: str
    display_name: str = ""
    lifecycle: Literal["active", "deprecated", "retired"] | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    retires_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str = field(repr=False)
    base_url: str | None = None
    # The person's own key (BYOK), not the site's.
    byok: bool = False


class Adapter(Protocol):
    name: str

    def stream(self, request: ChatRequest, credentials: Credentials) -> AsyncIterator[StreamEvent]:
        """Stream one reply as neutral events; raise only `ProviderError`s.

        Closing the iterator (or cancelling the task iterating it) closes the upstream stream.
        """
        ...

    async def complete(self, request: ChatRequest, credentials: Credentials) -> Completion:
        """One short reply, not streamed; raise only `ProviderError`s."""
        ...


class ModelLister(Protocol):
    async def list_models(self, credentials: Credentials) -> list[Listed]:
        """Every model the provider lists for this key; raise only `ProviderError`s."""
        ...


class KeyChecker(Protocol):
    """An adapter of a provider that takes people's own keys (`Provider.personal_keys`)."""

    async def check_key(self, credentials: Credentials) -> None:
        """A cheap call that only a valid key passes; raise only `ProviderError`s."""
        ...
