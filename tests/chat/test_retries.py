"""Retries before the first delta (backoff, retry-after, at most 3), every error code, timeouts."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from billing.models import LlmUsage
from billing.services import balance_of
from chat.models import Conversation, Message
from tests.chat.helpers import connect, send, until_end
from tests.conftest import configure_provider
from tests.fakes.anthropic import error_response, text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)


async def _reply(user: Any, model: str = "claude-sonnet-5-5") -> tuple[list[dict[str, Any]], int]:
    conversation = await Conversation.objects.acreate(owner=user, model=model)
    before = await database_sync_to_async(balance_of)(user_id=user.pk)
    tab = await connect(user, conversation)
    await send(tab, type="send", content="please answer")
    frames = await until_end(tab)
    await tab.disconnect()
    return frames, before


async def _attempts(message_id: int) -> list[tuple[int, str, str, int]]:
    rows = LlmUsage.objects.filter(message_id=message_id).order_by("attempt")
    return [(u.attempt, u.status, u.error_code, u.coins_charged) async for u in rows]


async def test_overloaded_twice_then_a_reply(
    alice: Any, anthropic_server: SSEServer, waits: list[float]
) -> None:
    anthropic_server.enqueue(
        error_response(529, "overloaded_error", "Overloaded"),
        error_response(529, "overloaded_error", "Overloaded"),
        text_reply(["Third ", "time."], output_tokens=2),
    )
    frames, _ = await _reply(alice)
    retrying = [f for f in frames if f["type"] == "retrying"]
    assert [f["attempt"] for f in retrying] == [2, 3]
    assert "overloaded" in retrying[0]["message"].lower()
    assert len(anthropic_server.requests) == 3
    # Exponential backoff with jitter in the upper half: 0.25-0.5 s, then 0.5-1 s.
    assert 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0
    stop = frames[-1]
    assert stop["type"] == "message_stop" and stop["coins_charged"] > 0
    attempts = await _attempts(stop["message_id"])
    assert attempts[:2] == [(1, "error", "overloaded", 0), (2, "error", "overloaded", 0)]
    assert attempts[2][:2] == (3, "ok")


async def test_retry_after_is_honoured(
    alice: Any, anthropic_server: SSEServer, waits: list[float]
) -> None:
    anthropic_server.enqueue(
        error_response(429, "rate_limit_error", "slow down", **{"retry-after": "7"}),
        text_reply(["ok"]),
    )
    frames, _ = await _reply(alice)
    assert waits == [7.0]
    assert frames[-1]["type"] == "message_stop"


async def test_a_long_retry_after_is_not_waited_out_but_said(
    alice: Any, anthropic_server: SSEServer, waits: list[float]
) -> None:
    anthropic_server.enqueue(
        error_response(429, "rate_limit_error", "slow down", **{"retry-after": "120"})
    )
    frames, before = await _reply(alice)
    end = frames[-1]
    assert end["code"] == "rate_limited" and "120 s" in end["message"]
    assert waits == [] and len(anthropic_server.requests) == 1
    assert await database_sync_to_async(balance_of)(user_id=alice.pk) == before


async def test_retries_stop_at_three_attempts_and_cost_nothing(
    alice: Any, anthropic_server: SSEServer, waits: list[float]
) -> None:
    anthropic_server.default = error_response(503, "api_error", "unavailable")
    frames, before = await _reply(alice)
    end = frames[-1]
    assert end["type"] == "error" and end["code"] == "unavailable"
    assert len(anthropic_server.requests) == 3 and len(waits) == 2
    assert [a[:2] for a in await _attempts(end["message_id"])] == [
        (1, "error"),
        (2, "error"),
        (3, "error"),
    ]
    assert await database_sync_to_async(balance_of)(user_id=alice.pk) == before


async def test_no_retry_after_the_first_delta(
    alice: Any, anthropic_server: SSEServer, waits: list[float]
) -> None:
    anthropic_server.enqueue(text_reply(["Some ", "text"], error_after=2), text_reply(["never"]))
    frames, _ = await _reply(alice)
    end = frames[-1]
    assert end["code"] == "overloaded" and end["partial_content"] == "Some text"
    assert len(anthropic_server.requests) == 1 and waits == []
    assert not any(f["type"] == "retrying" for f in frames)


@pytest.mark.parametrize(
    ("status", "error_type", "detail", "code", "attempts"),
    [
        (400, "invalid_request_error", "bad field", "invalid_request", 1),
        (400, "invalid_request_error", "prompt is too long: 2000000 tokens", "context_too_long", 1),
        (401, "authentication_error", "invalid x-api-key", "auth", 1),
        (403, "permission_error", "no access", "permission", 1),
        (404, "not_found_error", "model: x", "not_found", 1),
        (413, "request_too_large", "too big", "invalid_request", 1),
        (429, "rate_limit_error", "slow", "rate_limited", 3),
        (500, "api_error", "oops", "provider_error", 3),
        (503, "api_error", "down", "unavailable", 3),
        (529, "overloaded_error", "Overloaded", "overloaded", 3),
    ],
)
async def test_each_provider_status_ends_in_its_code_and_costs_nothing(
    alice: Any,
    anthropic_server: SSEServer,
    waits: list[float],
    status: int,
    error_type: str,
    detail: str,
    code: str,
    attempts: int,
) -> None:
    anthropic_server.default = error_response(status, error_type, detail)
    frames, before = await _reply(alice)
    end = frames[-1]
    assert end["type"] == "error" and end["code"] == code
    assert detail not in end["message"] and "{" not in end["message"]
    assert len(anthropic_server.requests) == attempts
    saved = await Message.objects.aget(pk=end["message_id"])
    assert (saved.status, saved.error_code, saved.error_message) == ("error", code, end["message"])
    assert len(await _attempts(end["message_id"])) == attempts
    assert await database_sync_to_async(balance_of)(user_id=alice.pk) == before


async def test_an_unreachable_provider_is_unavailable(
    alice: Any, anthropic_server: SSEServer, waits: list[float], settings: Any
) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    configure_provider(settings, "anthropic", BASE_URL=f"http://127.0.0.1:{port}")
    frames, _ = await _reply(alice)
    assert frames[-1]["code"] == "unavailable" and len(waits) == 2


async def test_a_hung_upstream_times_out_and_keeps_the_partial_text(
    alice: Any, anthropic_server: SSEServer, waits: list[float], settings: Any
) -> None:
    settings.PROVIDER_IDLE_TIMEOUT = 0.3
    script = text_reply(["Before ", "the silence"])
    script.chunks = script.chunks[:5]  # headers and some text, then nothing
    script.hang = 5
    anthropic_server.enqueue(script)
    frames, _ = await _reply(alice)
    end = frames[-1]
    assert end["code"] == "timeout" and end["partial_content"] == "Before the silence"
    saved = await Message.objects.aget(pk=end["message_id"])
    assert saved.status == "error" and saved.content == "Before the silence"
    usage = await LlmUsage.objects.aget(message_id=end["message_id"])
    assert usage.status == "error" and usage.error_code == "timeout"
