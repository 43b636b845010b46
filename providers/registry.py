"""Which adapter and which key serve a model."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings

from providers.anthropic import AnthropicAdapter
from providers.base import Adapter, Credentials
from providers.catalogue import CATALOGUE, ModelInfo, ProviderName, get_model
from providers.demo import DemoAdapter
from providers.errors import PermissionDenied

ADAPTERS: dict[ProviderName, Adapter] = {
    "anthropic": AnthropicAdapter(),
    "demo": DemoAdapter(),
}

PROVIDER_NAMES: dict[ProviderName, str] = {
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


def server_credentials(provider: ProviderName) -> Credentials | None:
    """The site's own key for `provider`, or None when the site has none."""
    match provider:
        case "demo":
            return Credentials(api_key="")
        case "anthropic":
            key, base_url = settings.ANTHROPIC_API_KEY, settings.ANTHROPIC_BASE_URL
        case "openai":
            key, base_url = settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL
        case "openrouter":
            key, base_url = settings.OPENROUTER_API_KEY, settings.OPENROUTER_BASE_URL
    return Credentials(api_key=key, base_url=base_url) if key else None


def unavailable_reason(model: ModelInfo) -> str | None:
    """Why this site cannot serve `model` now, in a sentence; None when it can."""
    provider = PROVIDER_NAMES[model.provider]
    if model.provider not in ADAPTERS:
        return f"{provider} models are not supported on this site yet."
    if server_credentials(model.provider) is None:
        return f"This site has no {provider} key."
    return None


def resolve(model_id: str, *, today: dt.date | None = None) -> Resolved:
    """The adapter and key for a reply from `model_id`; raises a `ProviderError` if none."""
    model = get_model(model_id, today=today)
    reason = unavailable_reason(model)
    adapter = ADAPTERS.get(model.provider)
    credentials = server_credentials(model.provider)
    if reason or adapter is None or credentials is None:
        raise PermissionDenied(f"{model.display_name} is not available: {reason}")
    return Resolved(model=model, adapter=adapter, credentials=credentials)


def listed_models(*, today: dt.date | None = None) -> list[ModelInfo]:
    """Catalogue entries a person may still pick (retired ones are left out)."""
    day = today or dt.date.today()
    return [m for m in CATALOGUE if m.lifecycle(day) != "retired"]
