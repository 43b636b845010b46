""" "New chat" cannot be used to fill the database: it reopens the person's empty conversation,
and a person has at most CONVERSATIONS_PER_PERSON conversations, started at most
NEW_CONVERSATIONS_PER_MINUTE a minute, each refusal said on the page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(alice: Any) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def _new(page: Client) -> Any:
    return page.post("/chat/new/")


def test_new_chat_reopens_the_empty_conversation_instead_of_making_another(
    alice: Any, page: Client
) -> None:
    first = _new(page)["Location"]
    assert _new(page)["Location"] == first
    assert Conversation.objects.filter(owner=alice).count() == 1
    # Once it has a message, the next New chat is a new conversation.
    Message.objects.create(conversation=Conversation.objects.get(owner=alice), role="user")
    assert _new(page)["Location"] != first


def _fill(alice: Any, n: int) -> None:
    conversations = Conversation.objects.bulk_create(
        Conversation(owner=alice, model="demo") for _ in range(n)
    )
    Message.objects.bulk_create(
        Message(conversation=c, role="user", content="hi") for c in conversations
    )


def test_a_person_at_the_cap_is_told_and_nothing_is_made(
    alice: Any, page: Client, settings: Any
) -> None:
    settings.CONVERSATIONS_PER_PERSON = 3
    _fill(alice, 3)
    response = _new(page)
    assert response.status_code == 302 and response["Location"] == "/chat/"
    assert "the most this site keeps" in page.get("/chat/").content.decode()
    assert Conversation.objects.filter(owner=alice).count() == 3


def test_new_conversations_a_minute_are_limited(alice: Any, page: Client, settings: Any) -> None:
    settings.NEW_CONVERSATIONS_PER_MINUTE = 2
    made = set()
    for _ in range(2):
        made.add(_new(page)["Location"])
        Message.objects.create(conversation=Conversation.objects.latest("id"), role="user")
    refused = _new(page)
    assert refused["Location"] == "/chat/" and len(made) == 2
    assert "Try again in" in page.get("/chat/").content.decode()
    assert Conversation.objects.filter(owner=alice).count() == 2
