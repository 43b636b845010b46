"""Pages: accounts, the conversation list, the server-rendered conversation, the models API."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from chat.models import Conversation, Message
from tests.conftest import configure_provider

pytestmark = pytest.mark.django_db


def test_signup_logs_the_person_in_and_lands_on_the_chat_list(client: Client) -> None:
    response = client.post(
        "/accounts/signup/",
        {
            "username": "carol",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/chat/"
    assert client.get("/chat/").status_code == 200


def test_login_and_logout_pages_work(client: Client, alice: Any) -> None:
    assert client.get("/accounts/login/").status_code == 200
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": "alice-password-1"}
    )
    assert response.status_code == 302 and response["Location"] == "/chat/"
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/chat/").status_code == 302


@pytest.mark.parametrize("url", ["/chat/", "/chat/1/", "/api/models/"])
def test_chat_pages_need_a_logged_in_person(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_new_chat_is_a_post_that_redirects_to_the_conversation(client: Client, alice: Any) -> None:
    client.force_login(alice)
    assert client.get("/chat/new/").status_code == 405
    response = client.post("/chat/new/")
    conversation = Conversation.objects.get(owner=alice)
    assert response.status_code == 302
    assert response["Location"] == f"/chat/{conversation.pk}/"
    assert conversation.model == "demo"  # no Anthropic key in tests: the offline default


def test_new_conversations_use_claude_when_the_site_has_a_key(
    client: Client, alice: Any, settings: Any
) -> None:
    settings.DEFAULT_MODEL = "claude-sonnet-5-5"
    client.force_login(alice)
    client.post("/chat/new/")
    assert Conversation.objects.get(owner=alice).model == "claude-sonnet-5-5"


def test_another_persons_conversation_is_a_404(client: Client, alice: Any, bob: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    client.force_login(bob)
    assert client.get(f"/chat/{conversation.pk}/").status_code == 404
    assert client.get("/chat/").content.count(b"/chat/%d/" % conversation.pk) == 0


def test_the_page_renders_markdown_sanitized(client: Client, alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    Message.objects.create(conversation=conversation, role="user", content="<b>mine</b>")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content=(
            "**bold** <script>alert(1)</script> <img src=x onerror=alert(2)> "
            "[click](javascript:alert(3)) [ok](https://example.com)"
        ),
    )
    client.force_login(alice)
    html = client.get(f"/chat/{conversation.pk}/").content.decode()
    body = html.split('id="messages"', 1)[1].split("</ol>", 1)[0]
    assert "<strong>bold</strong>" in body
    assert "<script>" not in body and "<img" not in body and 'href="javascript:' not in body
    assert 'href="https://example.com"' in body
    assert "&lt;b&gt;mine&lt;/b&gt;" in body  # the person's own text is shown, not executed


def test_a_streaming_reply_is_rendered_with_its_partial_text_and_the_indicator(
    client: Client, alice: Any
) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    Message.objects.create(conversation=conversation, role="user", content="hi")
    Message.objects.create(
        conversation=conversation, role="assistant", status="streaming", content="Partial so *far*"
    )
    client.force_login(alice)
    html = client.get(f"/chat/{conversation.pk}/").content.decode()
    assert 'data-status="streaming"' in html and 'aria-busy="true"' in html
    assert "Partial so <em>far</em>" in html
    assert 'data-content="Partial so *far*"' in html
    assert '<div class="indicator" id="indicator">' in html  # not hidden


def test_a_finished_conversation_hides_the_indicator(client: Client, alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    Message.objects.create(conversation=conversation, role="assistant", content="done")
    client.force_login(alice)
    html = client.get(f"/chat/{conversation.pk}/").content.decode()
    assert '<div class="indicator" id="indicator" hidden>' in html


def test_models_api_lists_what_the_person_can_use_and_why_not(
    client: Client, alice: Any, settings: Any
) -> None:
    client.force_login(alice)
    models = {m["id"]: m for m in client.get("/api/models/").json()["models"]}
    assert models["demo"]["available"] is True
    assert models["claude-sonnet-5-5"]["available"] is False
    assert "no Anthropic key" in models["claude-sonnet-5-5"]["unavailable_reason"]
    configure_provider(settings, "anthropic", API_KEY="sk-ant-x")
    models = {m["id"]: m for m in client.get("/api/models/").json()["models"]}
    sonnet = models["claude-sonnet-5-5"]
    assert sonnet == sonnet | {
        "provider": "anthropic",
        "display_name": "Claude Sonnet 5.5",
        "context_window": 1_000_000,
        "max_output_tokens": 128_000,
        "input_price_per_mtok": 3.0,
        "output_price_per_mtok": 15.0,
        "lifecycle": "active",
        "available": True,
        "unavailable_reason": None,
    }
    assert sonnet["description"]
    assert models["gpt-5.5"]["provider"] == "openai" and not models["gpt-5.5"]["available"]
    assert "sk-ant-x" not in client.get("/api/models/").content.decode()


def test_signup_grants_the_signup_coins_and_the_page_shows_the_balance(
    client: Client, settings: Any
) -> None:
    client.post(
        "/accounts/signup/",
        {
            "username": "dora",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    html = client.get("/chat/").content.decode()
    assert (
        f'<span id="balance-value">{settings.SIGNUP_COINS}</span> <span id="balance-unit">coins'
        in html
    )
    assert 'id="balance-warning" hidden' in html
    assert 'id="low-balance-help" hidden' in html


def test_a_low_balance_is_flagged(client: Client, alice: Any) -> None:
    from billing.services import coins_adjust

    coins_adjust(user_id=alice.pk, amount=-999, reason="spent", reference="x", created_by_id=None)
    client.force_login(alice)
    html = client.get("/chat/").content.decode()
    assert "balance--low" in html and 'id="balance-warning" hidden' not in html
    # What to do about it: the person's own key, or the administrator.
    assert 'id="low-balance-help" hidden' not in html
    assert "your own provider key" in html and "administrator" in html
    # One coin, not "1 coins".
    assert '<span id="balance-value">1</span> <span id="balance-unit">coin</span>' in html


def test_models_api_counts_the_persons_own_keys(client: Client, alice: Any, settings: Any) -> None:
    from providers.services import provider_key_save

    configure_provider(settings, "anthropic", API_KEY="")
    provider_key_save(
        user_id=alice.pk, provider="anthropic", key="sk-ant-own-key-0001", verified=True
    )
    client.force_login(alice)
    models = {m["id"]: m for m in client.get("/api/models/").json()["models"]}
    assert models["claude-sonnet-5-5"]["available"] is True
    assert models["claude-sonnet-5-5"]["own_key"] is True
    assert "sk-ant-own-key-0001" not in client.get("/api/models/").content.decode()


def test_a_finished_reply_shows_its_cost_after_a_reload(client: Any, alice: Any) -> None:
    """Model, tokens in and out and the coins its latest call charged (as `message_stop`, or
    the `error` after text, said live); an own-key reply names the key instead; a reply that
    failed before writing anything shows none."""
    from billing.models import LlmUsage
    from chat.models import Conversation, Message

    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    Message.objects.create(conversation=conversation, role="user", content="hi")
    paid = Message.objects.create(
        conversation=conversation, role="assistant", content="Hello", status="complete",
        model="claude-sonnet-5-5", provider="anthropic", input_tokens=1500, output_tokens=7,
    )  # fmt: skip
    for coins in (9, 3):  # a retried reply: its latest call is the one shown
        LlmUsage.objects.create(
            user=alice, message_id=paid.pk, provider="anthropic", model=paid.model,
            status="ok", coins_charged=coins,
        )  # fmt: skip
    Message.objects.create(
        conversation=conversation, role="assistant", content="Again", status="stopped",
        model="gpt-5.5", provider="openai", byok=True, input_tokens=3, output_tokens=1,
    )  # fmt: skip
    failed = Message.objects.create(
        conversation=conversation, role="assistant", content="", status="error",
        model="claude-sonnet-5-5", provider="anthropic",
    )  # fmt: skip
    cut = Message.objects.create(
        conversation=conversation, role="assistant", content="Half", status="error",
        model="claude-sonnet-5-5", provider="anthropic", input_tokens=5, output_tokens=1,
    )  # fmt: skip
    LlmUsage.objects.create(
        user=alice, message_id=cut.pk, provider="anthropic", model=cut.model, status="error",
        coins_charged=1,
    )  # fmt: skip
    client.force_login(alice)
    page = client.get(f"/chat/{conversation.pk}/").content.decode()
    assert "Claude Sonnet 5.5 · 1,500 tokens in, 7 out · 3 coins" in page
    assert "GPT-5.5 · 3 tokens in, 1 out · paid with your own OpenAI key" in page
    assert "Claude Sonnet 5.5 · 5 tokens in, 1 out · 1 coin<" in page  # text, then it failed
    assert f'data-message-id="{failed.pk}"' in page
    # Not the reply that failed before writing anything.
    assert len(re.findall(r'<p class="message-meta">[^<]*tokens in', page)) == 3


def test_a_title_s_cost_shows_under_the_reply_it_followed_after_a_reload(
    client: Any, alice: Any
) -> None:
    """As `conversation_title` wrote it live: "Title · " and the call's cost line."""
    from billing.models import LlmUsage

    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    Message.objects.create(conversation=conversation, role="user", content="hi")
    reply = Message.objects.create(
        conversation=conversation, role="assistant", content="Hello", status="complete",
        model="claude-sonnet-5-5", provider="anthropic", input_tokens=10, output_tokens=2,
    )  # fmt: skip
    LlmUsage.objects.create(
        user=alice, message_id=reply.pk, provider="anthropic", model=reply.model, status="ok",
        coins_charged=2,
    )  # fmt: skip
    LlmUsage.objects.create(
        user=alice, message_id=reply.pk, provider="anthropic", model="claude-haiku-5-5",
        purpose="title", status="ok", input_tokens=60, output_tokens=6, coins_charged=1,
    )  # fmt: skip
    client.force_login(alice)
    page = client.get(f"/chat/{conversation.pk}/").content.decode()
    assert "Claude Sonnet 5.5 · 10 tokens in, 2 out · 2 coins<" in page
    assert (
        '<p class="message-title-cost">Title · Claude Haiku 5.5 · 60 tokens in, 6 out · 1 coin</p>'
        in page
    )


def test_the_page_gives_the_composer_each_model_s_prices_and_typical_reply(
    client: Any, alice: Any
) -> None:
    """The figures of the estimate under the composer (estimate.js; a browser test holds its
    arithmetic to the server's): prices as whole numbers, the reply's output, the typical
    reply's coins from the last 30 days' paid replies."""
    import json as json_module

    from django.core.cache import cache

    from billing.models import LlmUsage
    from billing.typical import CACHE_KEY

    cache.delete(CACHE_KEY)
    for coins in (10, 21):
        LlmUsage.objects.create(
            user=alice, provider="anthropic", model="claude-sonnet-5-5", status="ok",
            coins_charged=coins,
        )  # fmt: skip
    LlmUsage.objects.create(  # not a paid, finished reply: left out
        user=alice, provider="anthropic", model="claude-sonnet-5-5", status="error",
        coins_charged=500,
    )  # fmt: skip
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    client.force_login(alice)
    page = client.get(f"/chat/{conversation.pk}/").content.decode()
    cache.delete(CACHE_KEY)
    raw = re.search(r'data-config="([^"]+)"', page)
    assert raw is not None
    from html import unescape

    estimate = json_module.loads(unescape(raw.group(1)))["estimate"]
    sonnet = estimate["models"]["claude-sonnet-5-5"]
    assert sonnet == {
        "input": 30_000, "output": 150_000, "max_tokens": 16_000, "own_key": False,
        "typical": 16,
    }  # fmt: skip
    assert estimate["models"]["claude-haiku-5-5"]["typical"] is None
    assert estimate["price_scale"] == 10_000 and estimate["min_reply_tokens"] >= 1
    assert 'aria-describedby="estimate"' in page


def test_the_picker_keeps_labels_short_and_says_once_why_models_are_unavailable(
    client: Any, alice: Any, settings: Any
) -> None:
    configure_provider(settings, "anthropic", API_KEY="sk-ant-x")
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    client.force_login(alice)
    page = client.get(f"/chat/{conversation.pk}/").content.decode()
    assert re.search(r'value="gpt-5.5"[^>]*disabled>GPT-5.5 \(unavailable\)</option>', page)
    reasons = re.findall(r'<p class="model-info model-unavailable">(.*?)</p>', page)
    openai = [r for r in reasons if "OpenAI" in r]
    assert len(openai) == 1 and openai[0].startswith("GPT-5.5, GPT-5.4 mini, GPT-4.1 mini: ")
    assert 'href="/settings/keys/"' in openai[0]
    assert not any("no Anthropic key" in r for r in reasons)  # the site has its key
