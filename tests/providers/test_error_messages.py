"""Property: error messages are user-friendly, for every provider error the adapters can raise."""

from __future__ import annotations

import json
import socket
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers import anthropic as anthropic_adapter
from providers import openai as openai_adapter
from providers import registry
from providers.base import ChatMessage, ChatRequest, Credentials
from providers.errors import ERROR_CODES, ERROR_TYPES, ProviderError, error_for

SECRET = "sk-ant-api03-SECRET-0000"
details = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.just('{"error": {"type": "x", "message": "internal"}}'),
    st.just(f"invalid x-api-key {SECRET}"),
    st.just('Traceback (most recent call last):\n  File "x.py", line 1'),
    st.just("prompt is too long: 1000001 tokens > 1000000 maximum"),
)
error_types = st.one_of(st.none(), st.sampled_from(sorted(ERROR_TYPES)), st.text(max_size=20))
statuses = st.one_of(st.none(), st.integers(100, 599))
retry_afters = st.one_of(st.none(), st.floats(0, 10**6, allow_nan=False))


def assert_friendly(error: ProviderError) -> None:
    assert error.code in ERROR_CODES
    message = str(error)
    assert message.strip() and message == error.message
    assert len(message) < 200
    for bad in ("{", "}", "Traceback", 'File "', "sk-", SECRET, "None", "http"):
        assert bad not in message, (bad, message)
    assert message[0].isupper() and message.rstrip().endswith((".", ")"))


@given(
    status=statuses,
    error_type=error_types,
    detail=details,
    retry_after=retry_afters,
    byok=st.booleans(),
)
def test_error_messages_are_user_friendly(
    status: int | None,
    error_type: str | None,
    detail: str | None,
    retry_after: float | None,
    byok: bool,
) -> None:
    assert_friendly(
        error_for(
            status=status, error_type=error_type, detail=detail, retry_after=retry_after, byok=byok
        )
    )


def _response(status: int, body: object, retry_after: str | None) -> httpx2.Response:
    headers = {"retry-after": retry_after} if retry_after else {}
    request = httpx2.Request(
        "POST", "https://api.example.invalid/v1/messages", headers={"x-api-key": SECRET}
    )
    return httpx2.Response(
        status, request=request, headers=headers, content=json.dumps(body).encode()
    )


@given(
    status=st.integers(400, 599) | st.just(200),
    error_type=error_types,
    detail=details,
    retry_after=st.one_of(st.none(), st.sampled_from(["3", "0.5", "soon", "99999"])),
    byok=st.booleans(),
)
def test_anthropic_sdk_errors_become_friendly_errors(
    status: int, error_type: str | None, detail: str | None, retry_after: str | None, byok: bool
) -> None:
    body = {"type": "error", "error": {"type": error_type, "message": detail}}
    exc = anthropic.APIStatusError(
        json.dumps(body), response=_response(status, body, retry_after), body=body
    )
    assert_friendly(anthropic_adapter.translate(exc, byok=byok))


@given(status=st.integers(400, 599), detail=details, byok=st.booleans())
def test_openai_sdk_errors_become_friendly_errors(
    status: int, detail: str | None, byok: bool
) -> None:
    body = {"error": {"message": detail, "code": status}}
    exc = openai.APIStatusError(json.dumps(body), response=_response(status, body, None), body=body)
    assert_friendly(openai_adapter.translate(exc, byok=byok))


def test_transport_failures_become_friendly_errors() -> None:
    request = httpx2.Request("POST", "https://api.example.invalid/v1/messages")
    for exc in (
        httpx2.ReadTimeout("timed out", request=request),
        httpx2.RemoteProtocolError("peer closed connection", request=request),
        anthropic.APIConnectionError(request=request),
        anthropic.APITimeoutError(request=request),
    ):
        assert_friendly(anthropic_adapter.translate(exc, byok=False))


UNREACHABLE = [("anthropic", "claude-haiku-5-5", ""), ("openai", "gpt-5.5", "/v1"),
               ("openrouter", "meta-llama/llama-4-maverick", "/api/v1")]  # fmt: skip


@pytest.mark.parametrize(("provider", "model", "prefix"), UNREACHABLE)
async def test_a_provider_that_refuses_the_connection_is_named_so_not_a_timeout(
    provider: str, model: str, prefix: str
) -> None:
    error = await _stream_error(provider, model, f"http://127.0.0.1:1{prefix}")
    assert error.code == "unavailable" and error.retryable
    assert "refused the connection" in error.message


@pytest.mark.parametrize(("provider", "model", "prefix"), UNREACHABLE)
async def test_a_provider_whose_name_does_not_resolve_is_named_so(
    provider: str, model: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def no_such_name(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "api.provider.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    error = await _stream_error(provider, model, f"http://api.provider.invalid{prefix}")
    assert error.code == "unavailable" and "address could not be found" in error.message


async def _stream_error(provider: str, model: str, base_url: str) -> ProviderError:
    request = ChatRequest(model=model, messages=[ChatMessage("user", "hi")], max_tokens=10)
    with pytest.raises(ProviderError) as raised:
        async for _ in registry.adapter(provider).stream(
            request, Credentials(api_key="sk-test-0000", base_url=base_url)
        ):
            pass
    return raised.value
