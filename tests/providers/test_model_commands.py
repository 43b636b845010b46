"""`list_models` and `sync_models`: the catalogue as a table or JSON, and live from providers."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from providers import model_sync
from providers.catalogue import CATALOGUE, find_model, get_model
from providers.errors import ModelNotFound
from providers.models import ReportedModel
from tests.conftest import configure_provider
from tests.fakes.anthropic import error_response
from tests.fakes.models_list import anthropic_models, openai_models
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db

OLD = "claude-sonnet-4-5-20250929"


def run(*args: str) -> str:
    out = StringIO()
    call_command("list_models", *args, stdout=out)
    return out.getvalue()


def test_the_table_lists_every_model_with_limits_prices_and_availability(settings: Any) -> None:
    configure_provider(settings, "anthropic", API_KEY="sk-ant-test-0000")
    lines = run().splitlines()
    assert lines[0].split() == [
        "id", "provider", "name", "context", "max", "output", "$/Mtok", "in", "$/Mtok", "out",
        "lifecycle", "available",
    ]  # fmt: skip
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {m.id for m in CATALOGUE}
    sonnet = rows["claude-sonnet-5-5"].split()
    assert sonnet[:2] == ["claude-sonnet-5-5", "anthropic"]
    assert "1,000,000" in sonnet and "128,000" in sonnet and sonnet[-1] == "yes"
    assert rows["gpt-5.5"].split()[-1] == "no"  # no OpenAI key on this server
    assert "deprecated (2026-11-30)" in rows[OLD] or "retired" in rows[OLD]


def test_provider_and_available_filters(settings: Any) -> None:
    configure_provider(settings, "anthropic", API_KEY="")
    openai_rows = run("--provider", "openai").splitlines()[2:]
    assert openai_rows and all(r.split()[1] == "openai" for r in openai_rows)
    available = run("--available").splitlines()[2:]
    assert [r.split()[0] for r in available] == ["demo"]


def test_json_output_has_one_object_per_model_with_its_figures() -> None:
    payload = json.loads(run("--json"))
    assert set(payload) == {"models"}
    first = payload["models"][0]
    assert set(first) == {
        "id", "provider", "provider_name", "display_name", "description", "context_window",
        "max_output_tokens", "input_price_per_mtok", "output_price_per_mtok", "thinking",
        "lifecycle", "retires_on", "successor", "available", "own_key", "unavailable_reason",
    }  # fmt: skip
    demo = next(m for m in payload["models"] if m["id"] == "demo")
    assert demo["available"] is True and demo["unavailable_reason"] is None


def test_live_marks_models_gone_upstream_and_upstream_models_not_in_the_catalogue(
    anthropic_server: SSEServer, openai_server: SSEServer
) -> None:
    anthropic_server.enqueue(
        anthropic_models(
            {"id": "claude-sonnet-5-5"},
            {"id": "claude-opus-5-5"},
            {"id": "claude-fable-5-2"},
        ),
        openai_models("gpt-5.5", "gpt-5.4-mini", "gpt-4.1-mini", "gpt-6-sol"),
    )
    payload = json.loads(run("--live", "--json"))
    rows = {m["id"]: m for m in payload["models"]}
    assert rows["claude-sonnet-5-5"]["listed_upstream"] is True
    assert rows["claude-haiku-5-5"]["listed_upstream"] is False
    assert rows["gpt-5.5"]["listed_upstream"] is True
    assert "listed_upstream" not in rows["demo"]
    assert payload["not_in_catalogue"] == {
        "anthropic": ["claude-fable-5-2"],
        "openai": ["gpt-6-sol"],
    }
    paths = [r.path for r in anthropic_server.requests]
    assert paths[0].startswith("/v1/models") and paths[1] == "/v1/models"


def test_live_table_says_what_is_missing_and_shows_the_live_figures(
    anthropic_server: SSEServer,
) -> None:
    anthropic_server.enqueue(
        anthropic_models(
            {"id": "claude-sonnet-5-5", "max_tokens": 99_000, "max_input_tokens": 800_000},
            {"id": "claude-new"},
        )
    )
    out = run("--live", "--provider", "anthropic")
    assert "[not listed upstream]" in out
    assert "Anthropic lists 1 model(s) not in the catalogue:\n  claude-new" in out
    sonnet = next(line for line in out.splitlines() if line.startswith("claude-sonnet-5-5 "))
    assert "800,000" in sonnet and "99,000" in sonnet
    # Stored like sync_models does, for every process.
    assert ReportedModel.objects.get(model_id="claude-sonnet-5-5").max_output_tokens == 99_000


def test_a_failing_live_call_is_a_clear_error_with_a_non_zero_exit(
    anthropic_server: SSEServer,
) -> None:
    anthropic_server.enqueue(error_response(401, "authentication_error", "invalid x-api-key"))
    with pytest.raises(CommandError, match=r"Could not list models: Anthropic: .*key") as caught:
        run("--live")
    assert "sk-ant-test" not in str(caught.value)
    assert caught.value.returncode == 1


def test_live_without_any_key_says_so(settings: Any) -> None:
    configure_provider(settings, "anthropic", API_KEY="")
    configure_provider(settings, "openai", API_KEY="")
    configure_provider(settings, "openrouter", API_KEY="")
    with pytest.raises(CommandError, match="needs a server key"):
        run("--live")


def test_sync_models_stores_the_providers_figures_and_the_catalogue_uses_them(
    anthropic_server: SSEServer, openrouter_server: SSEServer
) -> None:
    anthropic_server.enqueue(
        anthropic_models(
            {"id": "claude-sonnet-5-5", "max_input_tokens": 900_000, "max_tokens": 100_000},
            {
                "id": OLD,
                "lifecycle": "retired",
                "retires_at": "2026-11-20T00:00:00Z",
                "max_tokens": 64_000,
            },
            {
                "id": "claude-haiku-5-5",
                "lifecycle": "deprecated",
                "retires_at": "2027-03-01T00:00:00Z",
            },
        ),
        openai_models(
            "google/gemini-2.5-pro",
            **{
                "google/gemini-2.5-pro": {
                    "name": "Google: Gemini 2.5 Pro",
                    "context_length": 1_000_000,
                    "top_provider": {"max_completion_tokens": 60_000},
                }
            },
        ),
    )
    out = StringIO()
    call_command("sync_models", stdout=out)
    assert "Anthropic: stored figures for 3 model(s)." in out.getvalue()
    assert "OpenRouter: stored figures for 1 model(s)." in out.getvalue()
    assert ReportedModel.objects.count() == 4

    model_sync.forget()
    model_sync.reload()
    sonnet = get_model("claude-sonnet-5-5")
    assert (sonnet.context_window, sonnet.max_output_tokens) == (900_000, 100_000)
    assert sonnet.default_max_tokens <= 100_000
    with pytest.raises(ModelNotFound, match=r"Claude Sonnet 4\.5 was retired on November 20, 2026"):
        get_model(OLD)
    haiku = get_model("claude-haiku-5-5")
    assert haiku.lifecycle(haiku.retires_on.replace(year=2026)) == "deprecated"  # type: ignore[union-attr]
    assert str(haiku.retires_on) == "2027-03-01"
    gemini = find_model("google/gemini-2.5-pro")
    assert gemini is not None and gemini.max_output_tokens == 60_000


def test_sync_models_fails_loudly_and_keeps_what_was_stored(anthropic_server: SSEServer) -> None:
    anthropic_server.enqueue(error_response(500, "api_error", "Internal error"))
    with pytest.raises(CommandError, match="Could not list models: Anthropic"):
        call_command("sync_models", stdout=StringIO())
    assert ReportedModel.objects.count() == 0
