"""Provider clients: one connection pool per SDK and loop, whoever's key, and no TLS set-up per key.

Making an HTTP client blocks the event loop for about 20 ms (its TLS context loads the CA
bundle); a person's first reply with their own key must not cost every stream of the worker
that pause.
"""

from __future__ import annotations

from typing import Any

import httpcore2
import pytest

from providers import anthropic as anthropic_adapter
from providers import clients
from providers import openai as openai_adapter
from providers.base import ChatMessage, ChatRequest, Credentials
from providers.events import TextDelta
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer


def _own_key(n: int, server: SSEServer | None = None) -> Credentials:
    return Credentials(
        api_key=f"sk-ant-api03-person-{n:04d}", base_url=server.url if server else None, byok=True
    )


@pytest.mark.optimisation
async def test_every_key_shares_one_connection_pool_per_sdk() -> None:
    first = anthropic_adapter._client(_own_key(1))
    second = anthropic_adapter._client(_own_key(2))
    assert first is not second and first.api_key != second.api_key
    assert first._client is second._client
    assert anthropic_adapter._client(_own_key(1)) is first
    openai = openai_adapter.OpenAIAdapter()._client(
        Credentials(api_key="sk-proj-x", base_url=None, byok=True)
    )
    openrouter = openai_adapter.OpenRouterAdapter()._client(
        Credentials(api_key="sk-or-v1-x", base_url=None, byok=True)
    )
    assert openai._client is openrouter._client is not first._client


@pytest.mark.optimisation
async def test_new_keys_make_no_tls_context(
    anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients.tls()  # the process's one context, made by whichever reply came first
    made: list[Any] = []
    real = httpcore2.default_ssl_context

    def counting(**kwargs: Any) -> Any:
        made.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(httpcore2, "default_ssl_context", counting)
    request = ChatRequest(
        model="claude-sonnet-5-5", messages=[ChatMessage("user", "Hi")], max_tokens=16
    )
    for n in range(3):
        anthropic_server.enqueue(text_reply([f"reply {n}"]))
        stream = anthropic_adapter.AnthropicAdapter().stream(request, _own_key(n, anthropic_server))
        texts = [event.text async for event in stream if isinstance(event, TextDelta)]
        assert texts == [f"reply {n}"]
    assert made == []
    # Each request carried its own person's key.
    keys = [r.headers.get("authorization", "") for r in anthropic_server.requests]
    assert keys == [f"Bearer sk-ant-api03-person-{n:04d}" for n in range(3)]


@pytest.mark.optimisation
async def test_only_the_most_recently_used_clients_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(clients, "MAX_CLIENTS", 2)
    first = anthropic_adapter._client(_own_key(1))
    anthropic_adapter._client(_own_key(2))
    assert anthropic_adapter._client(_own_key(1)) is first  # used again: now the newest
    anthropic_adapter._client(_own_key(3))  # evicts key 2, the least recently used
    assert anthropic_adapter._client(_own_key(1)) is first
    second_again = anthropic_adapter._client(_own_key(2))
    assert second_again.api_key == "sk-ant-api03-person-0002"
    assert second_again._client is first._client
