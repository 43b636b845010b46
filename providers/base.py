"""What an adapter is given and what it must do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from providers.events import StreamEvent


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: Sequence[ChatMessage]
    max_tokens: int
    system: str | None = None


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
