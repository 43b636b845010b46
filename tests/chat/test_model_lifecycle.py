"""Models change under conversations: picks are remembered, retirements move a conversation on."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import timezone

from chat import runner
from chat.model_choice import conversation_model_refresh
from chat.models import Conversation
from providers.models import ReportedModel
from tests.chat.helpers import connect, send, until_end
from tests.conftest import configure_provider
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

OLD = "claude-sonnet-4-5-20250929"


def _report(model_id: str, lifecycle: str, retires_at: dt.datetime | None = None) -> None:
    """What `sync_models` stores when Anthropic's Models API reports a lifecycle."""
    ReportedModel.objects.create(
        model_id=model_id,
        provider="anthropic",
        lifecycle=lifecycle,
        retires_at=retires_at,
        synced_at=timezone.now(),
    )


@pytest.mark.django_db(transaction=True)
async def test_a_conversation_whose_model_retired_moves_to_the_successor_with_a_note(
    alice: Any, anthropic_server: SSEServer
) -> None:
    await database_sync_to_async(_report)(OLD, "retired", timezone.now() - dt.timedelta(days=1))
    conversation = await database_sync_to_async(Conversation.objects.create)(owner=alice, model=OLD)
    anthropic_server.enqueue(text_reply(["Still here."]))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Hello again")
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    start = next(f for f in frames if f["type"] == "message_start")
    assert start["model"] == "claude-sonnet-5-5"
    assert frames[-1]["type"] == "message_stop"
    assert anthropic_server.requests[0].body["model"] == "claude-sonnet-5-5"
    await conversation.arefresh_from_db()
    assert conversation.model == "claude-sonnet-5-5"
    assert "Claude Sonnet 4.5 was retired" in conversation.model_note
    assert "Claude Sonnet 5.5" in conversation.model_note


@pytest.mark.django_db
def test_the_page_of_a_retired_models_conversation_shows_the_note_and_the_successor(
    client: Client, alice: Any
) -> None:
    # Retired by the provider ahead of the date it had announced: the note gives no date.
    _report(OLD, "retired", timezone.now() + dt.timedelta(days=30))
    conversation = Conversation.objects.create(owner=alice, model=OLD)
    client.force_login(alice)
    page = client.get(f"/chat/{conversation.pk}/").content.decode()
    assert "Claude Sonnet 4.5 was retired, so this conversation now uses Claude Sonnet 5.5." in page
    assert 'value="claude-sonnet-5-5" ' in page
    assert f'value="{OLD}"' not in page  # a retired model is not offered
    conversation.refresh_from_db()
    assert conversation.model == "claude-sonnet-5-5"


@pytest.mark.django_db
def test_a_model_past_its_announced_end_of_life_moves_on_with_the_date(alice: Any) -> None:
    """No word from the provider: the catalogue's date decides, whatever today is."""
    conversation = Conversation.objects.create(owner=alice, model=OLD)
    before = conversation_model_refresh(conversation=conversation, today=dt.date(2026, 11, 29))
    assert (before.model, before.model_note) == (OLD, "")
    after = conversation_model_refresh(conversation=conversation, today=dt.date(2026, 11, 30))
    assert after.model == "claude-sonnet-5-5"
    assert after.model_note == (
        "Claude Sonnet 4.5 was retired on November 30, 2026, "
        "so this conversation now uses Claude Sonnet 5.5."
    )
    conversation.refresh_from_db()
    assert conversation.model == "claude-sonnet-5-5"


@pytest.mark.django_db
def test_a_deprecated_model_shows_its_retirement_date_in_the_picker(
    client: Client, alice: Any
) -> None:
    _report(OLD, "deprecated", dt.datetime(2027, 1, 15, tzinfo=dt.UTC))
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    client.force_login(alice)
    page = client.get(f"/chat/{conversation.pk}/").content.decode()
    assert "Claude Sonnet 4.5 (retires 2027-01-15)" in page
    models = {m["id"]: m for m in client.get("/api/models/").json()["models"]}
    assert models[OLD]["lifecycle"] == "deprecated"
    assert models[OLD]["retires_on"] == "2027-01-15"


@pytest.mark.django_db
def test_the_picked_model_is_remembered_for_the_conversation(
    client: Client, alice: Any, settings: Any
) -> None:
    configure_provider(settings, "anthropic", API_KEY="sk-ant-test-0000")
    conversation = Conversation.objects.create(
        owner=alice, model="claude-sonnet-5-5", model_note="an old note"
    )
    client.force_login(alice)
    response = client.post(f"/chat/{conversation.pk}/model/", {"model": "claude-opus-5-5"})
    assert response.status_code == 200 and response.json() == {"model": "claude-opus-5-5"}
    conversation.refresh_from_db()
    assert (conversation.model, conversation.model_note) == ("claude-opus-5-5", "")
    page = client.get(f"/chat/{conversation.pk}/").content.decode()
    assert 'value="claude-opus-5-5" data-description' in page
    assert (
        '<option value="claude-opus-5-5"' in page
        and " selected" in page.split('value="claude-opus-5-5"')[1].split(">")[0]
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ("no-such-model", "does not exist"),
        ("gpt-5.5", "no OpenAI key"),  # unavailable: no server key, none of her own
    ],
)
def test_an_unknown_or_unavailable_pick_is_refused_and_changes_nothing(
    client: Client, alice: Any, model: str, reason: str
) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    client.force_login(alice)
    response = client.post(f"/chat/{conversation.pk}/model/", {"model": model})
    assert response.status_code == 400 and reason in response.json()["error"]
    conversation.refresh_from_db()
    assert conversation.model == "demo"


@pytest.mark.django_db
def test_a_retired_pick_is_refused_naming_the_successor(
    client: Client, alice: Any, settings: Any
) -> None:
    configure_provider(settings, "anthropic", API_KEY="sk-ant-test-0000")
    _report(OLD, "retired")
    conversation = Conversation.objects.create(owner=alice, model="demo")
    client.force_login(alice)
    response = client.post(f"/chat/{conversation.pk}/model/", {"model": OLD})
    assert response.status_code == 400
    assert "Use Claude Sonnet 5.5 instead" in response.json()["error"]


@pytest.mark.django_db
def test_another_persons_conversation_cannot_have_its_model_changed(
    client: Client, alice: Any, bob: Any
) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    client.force_login(bob)
    response = client.post(f"/chat/{conversation.pk}/model/", {"model": "demo"})
    assert response.status_code == 404
    assert client.get(f"/chat/{conversation.pk}/model/").status_code == 405
