"""Every provider the site knows: one record each, here and nowhere else.

A record names the provider's adapter (a dotted path, as Django names its backends), its label
for people, its endpoint, the shape of its keys (error reports mask anything that looks like
one) and what it supports. Its key and endpoint come from settings.PROVIDERS, which
chatsite/settings.py fills from `<NAME>_API_KEY` and `<NAME>_BASE_URL` for every record here.
Adding a provider: docs/adding-a-provider.md.

This module is plain data and imports nothing of Django that touches settings at import time:
the settings read it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from providers.base import Adapter, Credentials


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    label: str
    # The adapter class, built once with the provider's name (providers/base.py: `Adapter`).
    adapter: str
    # Where its API lives; `<NAME>_BASE_URL` overrides it (tests point it at a local fake).
    base_url: str = ""
    # A regular expression matching its keys, for error reports to mask.
    key_pattern: str = ""
    # False for a local provider that needs no key (the demo model).
    needs_key: bool = True
    # People may save their own key for it (/settings/keys/).
    personal_keys: bool = True
    # Its models endpoint can be asked for limits and lifecycles (`sync_models`).
    lists_models: bool = True


PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        Provider(
            name="anthropic",
            label="Anthropic",
            adapter="providers.anthropic.AnthropicAdapter",
            base_url="https://api.anthropic.com",
            key_pattern=r"sk-ant-[A-Za-z0-9_\-]{8,}",
        ),
        Provider(
            name="openai",
            label="OpenAI",
            adapter="providers.openai.OpenAIAdapter",
            base_url="https://api.openai.com/v1",
            key_pattern=r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{8,}",
        ),
        Provider(
            name="openrouter",
            label="OpenRouter",
            adapter="providers.openai.OpenRouterAdapter",
            base_url="https://openrouter.ai/api/v1",
            key_pattern=r"sk-or-[A-Za-z0-9_\-]{8,}",
        ),
        Provider(
            name="demo",
            label="Demo",
            adapter="providers.demo.DemoAdapter",
            needs_key=False,
            personal_keys=False,
            lists_models=False,
        ),
    )
}


def get(name: str) -> Provider:
    """The record of `name` (KeyError for a provider the site does not know)."""
    return PROVIDERS[name]


def label(name: str) -> str:
    """The provider's name for people; an unknown one as it is."""
    provider = PROVIDERS.get(name)
    return provider.label if provider else name


@functools.cache
def adapter(name: str) -> Adapter:
    """The provider's adapter, made on first use and shared."""
    made: Adapter = import_string(PROVIDERS[name].adapter)(name)
    return made


def load_adapters() -> None:
    """Every provider's adapter made now (its SDK imported), as a worker does at start, so no
    reply pays for an import with the event loop blocked."""
    for name in PROVIDERS:
        adapter(name)


def configured(name: str) -> dict[str, Any]:
    """The provider's entry in settings.PROVIDERS (API_KEY, BASE_URL)."""
    entry: dict[str, Any] = settings.PROVIDERS.get(name, {})
    return entry


def base_url(name: str) -> str | None:
    """The provider's endpoint: its setting, else the record's."""
    return configured(name).get("BASE_URL") or PROVIDERS[name].base_url or None


def server_credentials(name: str) -> Credentials | None:
    """The site's own key for the provider, or None when the site has none."""
    from providers.base import Credentials

    if not PROVIDERS[name].needs_key:
        return Credentials(api_key="")
    key = configured(name).get("API_KEY") or ""
    return Credentials(api_key=key, base_url=base_url(name)) if key else None


def with_personal_keys() -> list[Provider]:
    """Providers people can bring their own key for, in the registry's order."""
    return [p for p in PROVIDERS.values() if p.personal_keys]


def with_model_lists() -> list[Provider]:
    """Providers whose models endpoint `sync_models` and `list_models --live` can ask."""
    return [p for p in PROVIDERS.values() if p.lists_models]


def key_variables(providers: list[Provider]) -> str:
    """The settings that give the site its keys, for messages: "A, B or C"."""
    names = [f"{p.name.upper()}_API_KEY" for p in providers]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


@functools.cache
def key_shapes() -> re.Pattern[str]:
    """Anything shaped like one of the registered providers' keys."""
    patterns = [p.key_pattern for p in PROVIDERS.values() if p.key_pattern]
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns))
