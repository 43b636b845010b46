"""OpenAI and OpenRouter (the same Chat Completions API under another base URL).

Streaming replies through these providers arrive with the model catalogue's OpenAI and
OpenRouter models; for now this checks people's own keys.
"""

from __future__ import annotations

import httpx2
import openai
from django.conf import settings

from providers import clients
from providers.base import Credentials
from providers.errors import (
    ProviderError,
    ProviderTimeout,
    Unavailable,
    error_for,
    parse_retry_after,
)


def _client(credentials: Credentials, default_base_url: str) -> openai.AsyncOpenAI:
    base_url = credentials.base_url or default_base_url
    return clients.cached(
        ("openai", credentials.api_key, base_url),
        lambda: openai.AsyncOpenAI(
            api_key=credentials.api_key, base_url=base_url, max_retries=0, timeout=clients.timeout()
        ),
    )


def translate(exc: BaseException, *, byok: bool) -> ProviderError:
    """The one place OpenAI SDK and transport exceptions become our errors."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error", body) if isinstance(body, dict) else {}
        detail = error.get("message") if isinstance(error, dict) else None
        return error_for(
            status=exc.status_code,
            detail=detail if isinstance(detail, str) else None,
            retry_after=parse_retry_after(exc.response.headers.get("retry-after")),
            byok=byok,
        )
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return ProviderTimeout()
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return Unavailable("The connection to the provider was lost. Try again.")
    if isinstance(exc, openai.APIError):
        return error_for(status=None, byok=byok)
    raise exc


class OpenAIKeyChecker:
    def __init__(self, default_base_url_setting: str) -> None:
        self._setting = default_base_url_setting

    async def check_key(self, credentials: Credentials) -> None:
        try:
            await _client(credentials, getattr(settings, self._setting)).models.list()
        except Exception as exc:
            raise translate(exc, byok=credentials.byok) from None
