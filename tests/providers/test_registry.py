"""providers/registry.py: one record per provider, and everything that reads it."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from chatsite.error_reports import KeyScrubbingFilter
from providers import registry

# A key of each registered provider's shape (made up).
SAMPLE_KEYS = {
    "anthropic": "sk-ant-api03-abcdefghijklmnop",
    "openai": "sk-proj-abcdefghijklmnopqrst",
    "openrouter": "sk-or-v1-abcdefghijklmnopqrst",
}


@pytest.mark.parametrize("provider", registry.PROVIDERS.values(), ids=lambda p: p.name)
def test_every_record_builds_its_adapter_under_its_name(provider: registry.Provider) -> None:
    adapter = registry.adapter(provider.name)
    assert adapter.name == provider.name
    assert registry.adapter(provider.name) is adapter  # made once
    assert callable(adapter.stream) and callable(adapter.complete)
    if provider.personal_keys:
        assert callable(getattr(adapter, "check_key", None))
    if provider.lists_models:
        assert callable(getattr(adapter, "list_models", None))


def test_every_provider_that_needs_a_key_has_a_setting_shaped_like_databases() -> None:
    keyed = {p.name for p in registry.PROVIDERS.values() if p.needs_key}
    assert set(settings.PROVIDERS) == keyed
    for name in keyed:
        assert set(settings.PROVIDERS[name]) == {"API_KEY", "BASE_URL"}


def test_a_provider_without_a_setting_has_its_records_endpoint_and_no_key(settings: Any) -> None:
    settings.PROVIDERS = {}
    assert registry.base_url("openai") == registry.get("openai").base_url
    assert registry.server_credentials("openai") is None
    assert registry.server_credentials("demo") is not None  # needs no key


def test_every_keyed_provider_has_a_key_shape_and_a_sample() -> None:
    keyed = {p.name for p in registry.PROVIDERS.values() if p.needs_key}
    assert keyed == set(SAMPLE_KEYS)
    for name in keyed:
        assert registry.get(name).key_pattern


@pytest.mark.parametrize("name", sorted(SAMPLE_KEYS))
def test_error_reports_mask_every_registered_providers_key_shape(name: str) -> None:
    key = SAMPLE_KEYS[name]

    def crash(api_key: str) -> None:
        raise RuntimeError("boom")

    try:
        crash({"headers": {"Authorization": f"Bearer {key}"}})  # type: ignore[arg-type]
    except RuntimeError as exc:
        frame = exc.__traceback__.tb_next.tb_frame  # type: ignore[union-attr]
    shown = dict(KeyScrubbingFilter().get_traceback_frame_variables(None, frame))
    assert key not in str(shown["api_key"])
    assert "********" in str(shown["api_key"])


def test_messages_name_each_providers_key_setting() -> None:
    anthropic, openai, openrouter = (registry.get(n) for n in ("anthropic", "openai", "openrouter"))
    assert registry.key_variables([anthropic]) == "ANTHROPIC_API_KEY"
    assert registry.key_variables([anthropic, openai, openrouter]) == (
        "ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENROUTER_API_KEY"
    )
