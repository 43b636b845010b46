"""Which adapter and which key serve a model."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from providers.anthropic import AnthropicAdapter
from providers.base import Adapter, Credentials
from providers.catalogue import ModelInfo, ProviderName, get_model, models
from providers.demo import DemoAdapter
from providers.errors import PermissionDenied
from providers.openai import OpenAIAdapter

ADAPTERS: dict[ProviderName, Adapter] = {
    "anthropic": AnthropicAdapter(),
    "openai": OpenAIAdapter("openai"),
    "openrouter": OpenAIAdapter("openrouter"),
    "demo": DemoAdapter(),
}


class KeyChecker(Protocol):
    async def check_key(self, credentials: Credentials) -> None: ...


# Providers a person can bring their own key for, and how each key is tested.
KEY_CHECKERS: dict[str, KeyChecker] = {
    "anthropic": AnthropicAdapter(),
    "openai": OpenAIAdapter("openai"),
    "openrouter": OpenAIAdapter("openrouter"),
}

PROVIDER_NAMES: dict[str, str] = {
    "anthropic": "Anthropic",
    "openai": "OpenAI",
    "openrouter": "OpenRouter",
    "demo": "Demo",
}


@dataclass(frozen=True, slots=True)
class Resolved:
    model: ModelInfo
    adapter: Adapter
    credentials: Credentials


def base_url(provider: str) -> str | None:
    """The endpoint for `provider` (tests point these at local fakes)."""
    return {
        "anthropic": settings.ANTHROPIC_BASE_URL,
        "openai": settings.OPENAI_BASE_URL,
        "openrouter": settings.OPENROUTER_BASE_URL,
    }.get(provider)


def server_credentials(provider: ProviderName) -> Credentials | None:
    """The site's own key for `provider`, or None when the site has none."""
    if provider == "demo":
        return Credentials(api_key="")
    key = {
        "anthropic": settings.ANTHROPIC_API_KEY,
        "openai": settings.OPENAI_API_KEY,
        "openrouter": settings.OPENROUTER_API_KEY,
    }[provider]
    return Credentials(api_key=key, base_url=base_url(provider)) if key else None


def unavailable_reason(model: ModelInfo, own_providers: frozenset[str] = frozenset()) -> str | None:
    """Why `model` cannot be used (by someone with keys for `own_providers`); None if it can."""
    provider = PROVIDER_NAMES[model.provider]
    if model.provider not in ADAPTERS:
        return f"{provider} models are not supported on this site yet."
    if model.provider not in own_providers and server_credentials(model.provider) is None:
        return f"This site has no {provider} key: add your own on the keys page."
    return None


def resolve(
    model_id: str, *, own: Credentials | None = None, today: dt.date | None = None
) -> Resolved:
    """The adapter and key for a reply from `model_id`: the person's own key (`own`) wins."""
    model = get_model(model_id, today=today)
    adapter = ADAPTERS.get(model.provider)
    credentials = own or server_credentials(model.provider)
    if adapter is None or credentials is None:
        reason = unavailable_reason(model)
        raise PermissionDenied(f"{model.display_name} is not available. {reason}")
    return Resolved(model=model, adapter=adapter, credentials=credentials)


def listed_models(*, today: dt.date | None = None) -> list[ModelInfo]:
    """Catalogue entries a person may still pick (retired ones are left out)."""
    day = today or dt.date.today()
    return [m for m in models() if m.lifecycle(day) != "retired"]


def describe(
    model: ModelInfo, *, own_providers: frozenset[str] = frozenset(), today: dt.date | None = None
) -> dict[str, object]:
    """A model as `/api/models/` and `list_models --json` show it, for someone with keys for
    `own_providers` (none: what the server's keys allow)."""
    reason = unavailable_reason(model, own_providers)
    lifecycle = model.lifecycle(today or dt.date.today())
    return {
        "id": model.id,
        "provider": model.provider,
        "provider_name": PROVIDER_NAMES[model.provider],
        "display_name": model.display_name,
        "description": model.description,
        "context_window": model.context_window,
        "max_output_tokens": model.max_output_tokens,
        "input_price_per_mtok": model.input_price,
        "output_price_per_mtok": model.output_price,
        "thinking": model.thinking is not None,
        "lifecycle": lifecycle,
        "retires_on": model.retires_on.isoformat() if model.retires_on else None,
        "successor": model.successor,
        "available": reason is None and lifecycle != "retired",
        "own_key": model.provider in own_providers,
        "unavailable_reason": reason,
    }
