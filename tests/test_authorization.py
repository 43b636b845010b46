"""A second person reaches none of the first person's things: every URL, every admin page."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from billing.models import CoinAccount, LlmUsage
from chat.models import Conversation, Message
from providers.services import provider_key_save

pytestmark = pytest.mark.django_db

SECRET = "alice-private-words-4711"
KEY = "sk-ant-api03-alice-secret-key-9911"


@pytest.fixture
def alices(alice: Any) -> Conversation:
    conversation = Conversation.objects.create(owner=alice, model="demo", title=SECRET)
    Message.objects.create(conversation=conversation, role="user", content=SECRET)
    Message.objects.create(conversation=conversation, role="assistant", content=SECRET)
    provider_key_save(user_id=alice.pk, provider="anthropic", key=KEY, verified=True)
    LlmUsage.objects.create(user=alice, provider="demo", model="demo", status="ok")
    return conversation


def _as(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("get", "/chat/{id}/", 404),
        ("post", "/chat/{id}/model/", 404),
        ("get", "/chat/{missing}/", 404),
        ("post", "/chat/{missing}/model/", 404),
    ],
)
def test_another_persons_conversation_answers_like_a_missing_one(
    alices: Conversation, bob: Any, method: str, url: str, status: int
) -> None:
    path = url.format(id=alices.pk, missing=alices.pk + 1000)
    response = getattr(_as(bob), method)(path, {"model": "demo"})
    assert response.status_code == status
    assert SECRET not in response.content.decode()
    # The same answer for a foreign id and a missing one.
    missing = getattr(_as(bob), method)(url.format(id=alices.pk + 1000, missing=0), {})
    assert missing.status_code == response.status_code


@pytest.mark.parametrize("url", ["/chat/", "/api/models/", "/settings/keys/", "/chat/new/"])
def test_pages_of_a_second_person_show_nothing_of_the_first(
    alices: Conversation, bob: Any, url: str
) -> None:
    client = _as(bob)
    response = client.post(url, follow=True) if url == "/chat/new/" else client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert SECRET not in html and KEY not in html and KEY[-4:] not in html
    assert not Conversation.objects.filter(owner=bob, title=SECRET).exists()


def test_a_second_person_cannot_delete_or_test_the_first_persons_key(
    alices: Conversation, alice: Any, bob: Any
) -> None:
    client = _as(bob)
    for action in ("delete", "test"):
        client.post("/settings/keys/", {"action": action, "provider": "anthropic"})
    assert alice.provider_keys.filter(provider="anthropic").exists()


def _admin_urls(conversation: Conversation) -> list[str]:
    urls = [reverse("admin:index")]
    for model in apps.get_models():
        if not admin.site.is_registered(model):
            continue
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
    urls.append(reverse("admin:chat_conversation_change", args=[conversation.pk]))
    account = CoinAccount.objects.get(user=conversation.owner)
    urls.append(reverse("admin:billing_coinaccount_adjust", args=[str(account.pk)]))
    return urls


@pytest.mark.parametrize("who", ["anonymous", "person"])
def test_no_admin_page_opens_for_someone_who_is_not_staff(
    alices: Conversation, bob: Any, who: str
) -> None:
    client = Client() if who == "anonymous" else _as(bob)
    urls = _admin_urls(alices)
    assert len(urls) >= 10
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url
        assert SECRET not in response.content.decode()


def test_staff_without_permissions_sees_no_coins_usage_or_keys(
    alices: Conversation, bob: Any
) -> None:
    bob.is_staff = True
    bob.save()
    client = _as(bob)
    for url in _admin_urls(alices)[1:]:
        response = client.get(url)
        assert response.status_code in (403, 404), url  # Django admin: no permission
        assert SECRET not in response.content.decode()
