"""Which adapter and which key serve a model, and how a model is shown to a person."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from providers import registry
from providers.base import Adapter, Credentials
from providers.catalogue import ModelInfo, get_model, models
from providers.errors import PermissionDenied


@dataclass(frozen=True, slots=True)
class Resolved:
    model: ModelInfo
    adapter: Adapter
    credentials: Credentials


def unavailable_reason(model: ModelInfo, own_providers: frozenset[str] = frozenset()) -> str | None:
    """Why `model` cannot be used (by someone with keys for `own_providers`); None if it can."""
    if model.provider not in registry.PROVIDERS:
        return f"{model.provider} models are not supported on this site yet."
    provider = registry.get(model.provider)
    if model.provider not in own_providers and registry.server_credentials(provider.name) is None:
        return f"This site has no {provider.label} key: add your own on the keys page."
    return None


def resolve(
    model_id: str, *, own: Credentials | None = None, today: dt.date | None = None
) -> Resolved:
    """The adapter and key for a reply from `model_id`: the person's own key (`own`) wins."""
    model = get_model(model_id, today=today)
    known = model.provider in registry.PROVIDERS
    credentials = own or (registry.server_credentials(model.provider) if known else None)
    if not known or credentials is None:
        reason = unavailable_reason(model)
        raise PermissionDenied(f"{model.display_name} is not available. {reason}")
    return Resolved(model=model, adapter=registry.adapter(model.provider), credentials=credentials)


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
        "provider_name": registry.label(model.provider),
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
