"""/settings/keys/: add, test, replace and delete your own keys; never see one again."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client

from providers.models import ProviderKey
from tests.conftest import configure_provider
from tests.fakes.anthropic import error_response
from tests.fakes.models_list import ANTHROPIC_MODELS, OPENAI_MODELS
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "sk-ant-api03-personal-key-abcd1234"


@pytest.fixture
def providers(anthropic_server: SSEServer, settings: Any) -> SSEServer:
    configure_provider(settings, "anthropic", API_KEY="")  # the site has no key: only people's own
    configure_provider(settings, "openai", BASE_URL=anthropic_server.url + "/v1")
    configure_provider(settings, "openrouter", BASE_URL=anthropic_server.url + "/api/v1")
    return anthropic_server


def _save(client: Client, provider: str, key: str) -> str:
    response = client.post(
        "/settings/keys/", {"action": "save", "provider": provider, "key": key}, follow=True
    )
    return response.content.decode()


def test_a_working_key_is_saved_and_only_its_last_four_are_ever_shown(
    client: Client, alice: Any, providers: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    client.force_login(alice)
    providers.enqueue(ANTHROPIC_MODELS)
    with caplog.at_level(logging.DEBUG):
        html = _save(client, "anthropic", KEY)
    assert "works and was saved" in html and "••••1234" in html
    assert KEY not in html and KEY not in client.get("/settings/keys/").content.decode()
    assert providers.requests[-1].path.startswith("/v1/models")
    assert KEY in providers.requests[-1].headers.get("x-api-key", "") + providers.requests[
        -1
    ].headers.get("authorization", "")
    assert KEY not in caplog.text
    row = ProviderKey.objects.get(user=alice)
    assert row.verified_at is not None and KEY not in row.ciphertext


def test_a_refused_key_is_not_saved(client: Client, alice: Any, providers: SSEServer) -> None:
    client.force_login(alice)
    providers.enqueue(error_response(401, "authentication_error", "invalid x-api-key"))
    html = _save(client, "anthropic", KEY)
    assert "refused that key, so it was not saved" in html
    assert not ProviderKey.objects.exists()


def test_a_key_that_cannot_be_checked_is_saved_unverified(
    client: Client, alice: Any, providers: SSEServer
) -> None:
    client.force_login(alice)
    providers.enqueue(error_response(503, "api_error", "down"))
    html = _save(client, "anthropic", KEY)
    assert "could not be checked" in html and "not verified" in html
    assert ProviderKey.objects.get(user=alice).verified_at is None


@pytest.mark.parametrize(
    ("provider", "path"), [("openai", "/v1/models"), ("openrouter", "/api/v1/models")]
)
def test_openai_and_openrouter_keys_are_tested_on_their_endpoints(
    client: Client, alice: Any, providers: SSEServer, provider: str, path: str
) -> None:
    client.force_login(alice)
    providers.enqueue(OPENAI_MODELS)
    assert "works and was saved" in _save(client, provider, "sk-or-v1-0123456789abcdef")
    assert providers.requests[-1].path == path


def test_replace_test_and_delete(client: Client, alice: Any, providers: SSEServer) -> None:
    client.force_login(alice)
    providers.enqueue(
        ANTHROPIC_MODELS, ANTHROPIC_MODELS, error_response(401, "authentication_error", "revoked")
    )
    _save(client, "anthropic", KEY)
    _save(client, "anthropic", "sk-ant-api03-replacement-key-9999")
    assert ProviderKey.objects.get(user=alice).last4 == "9999"
    html = client.post(
        "/settings/keys/", {"action": "test", "provider": "anthropic"}, follow=True
    ).content.decode()
    assert "failed its test" in html and "not verified" in html
    client.post("/settings/keys/", {"action": "delete", "provider": "anthropic"})
    assert not ProviderKey.objects.exists()


@pytest.mark.parametrize(
    "key", ["", "short", "has spaces in it 12345", "x" * 600, "ключ-не-ascii-12345"]
)
def test_malformed_keys_are_refused_before_any_call(
    client: Client, alice: Any, providers: SSEServer, key: str
) -> None:
    client.force_login(alice)
    _save(client, "anthropic", key)
    assert not ProviderKey.objects.exists() and providers.requests == []


@pytest.mark.parametrize("wrapped", [f'"{KEY}"', f"'{KEY}'", f"`{KEY}`", f' "{KEY}" '])
def test_a_key_pasted_in_quotes_is_saved_without_them(
    client: Client, alice: Any, providers: SSEServer, wrapped: str
) -> None:
    client.force_login(alice)
    providers.enqueue(ANTHROPIC_MODELS)
    _save(client, "anthropic", wrapped)
    assert ProviderKey.objects.get(user=alice).last4 == KEY[-4:]
    sent = providers.requests[-1].headers
    assert KEY in sent.get("x-api-key", "") + sent.get("authorization", "")
    assert '"' not in sent.get("x-api-key", "") + sent.get("authorization", "")


@pytest.mark.parametrize("key", ['sk-ant-api03-in"side-12345', "sk-ant-api03-in'side-12345"])
def test_a_key_with_a_quote_inside_is_refused_before_any_call(
    client: Client, alice: Any, providers: SSEServer, key: str
) -> None:
    client.force_login(alice)
    _save(client, "anthropic", key)
    assert not ProviderKey.objects.exists() and providers.requests == []


def test_the_key_form_is_csrf_protected(alice: Any, providers: SSEServer) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(
        "/settings/keys/", {"action": "save", "provider": "anthropic", "key": KEY}
    )
    assert response.status_code == 403 and not ProviderKey.objects.exists()


def test_another_persons_key_is_neither_visible_nor_deletable(
    client: Client, alice: Any, bob: Any, providers: SSEServer
) -> None:
    from providers.services import provider_key_save

    provider_key_save(user_id=alice.pk, provider="anthropic", key=KEY, verified=True)
    client.force_login(bob)
    assert "••••1234" not in client.get("/settings/keys/").content.decode()
    client.post("/settings/keys/", {"action": "delete", "provider": "anthropic"})
    assert ProviderKey.objects.filter(user=alice).exists()


def test_the_keys_page_needs_a_logged_in_person(client: Client) -> None:
    response = client.get("/settings/keys/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_key_saved_while_its_provider_cannot_be_reached_names_why_and_is_unchecked(
    client: Client, alice: Any, providers: SSEServer, settings: Any
) -> None:
    """A refused connection is named as one (it was called a timeout), and the page says the
    key is unchecked until a test passes."""
    configure_provider(settings, "anthropic", API_KEY="", BASE_URL="http://127.0.0.1:1")
    client.force_login(alice)
    html = _save(client, "anthropic", KEY)
    assert "could not be checked" in html and "refused the connection" in html
    assert "took too long" not in html
    assert "unchecked until a test passes" in html
    assert ProviderKey.objects.get(user=alice).verified_at is None
