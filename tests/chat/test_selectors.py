"""chat/selectors.py: what a reply is sent upstream and what a socket is caught up with."""

from __future__ import annotations

from typing import Any

import pytest

from chat import selectors
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db


def test_the_history_sent_upstream_skips_empty_turns_in_order(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    said = [("user", "Hi"), ("assistant", ""), ("user", "Hello?"), ("assistant", "Hello!")]
    for role, content in said:
        Message.objects.create(conversation=conversation, role=role, content=content)
    later = Message.objects.create(conversation=conversation, role="user", content="Later")

    history = selectors.provider_history(conversation_id=conversation.pk, before_id=later.pk)

    assert [(m.role, m.content) for m in history] == [
        ("user", "Hi"),
        ("user", "Hello?"),
        ("assistant", "Hello!"),
    ]


def test_the_latest_exchange_is_the_last_reply_and_the_message_it_answers(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    first = Message.objects.create(conversation=conversation, role="user", content="One")
    Message.objects.create(conversation=conversation, role="assistant", content="1")
    second = Message.objects.create(
        conversation=conversation, role="user", content="Two", client_id="c-2"
    )
    reply = Message.objects.create(
        conversation=conversation, role="assistant", content="2", status="streaming", hub="h"
    )

    asked, latest = selectors.latest_exchange(conversation_id=conversation.pk)

    assert (asked, latest) == (second, reply)
    assert first != asked
    assert asked is not None and latest is not None
    assert (latest.content, latest.status, latest.hub, asked.client_id) == (
        "2",
        "streaming",
        "h",
        "c-2",
    )
    assert selectors.reply_hub(conversation_id=conversation.pk) == "h"


def test_a_conversation_without_a_reply_has_no_latest_exchange(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    Message.objects.create(conversation=conversation, role="user", content="Hi")
    assert selectors.latest_exchange(conversation_id=conversation.pk) == (None, None)
    assert selectors.reply_hub(conversation_id=conversation.pk) is None


def test_a_conversation_is_only_its_owners(alice: Any, bob: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    assert selectors.owns_conversation(owner_id=alice.pk, conversation_id=conversation.pk)
    assert not selectors.owns_conversation(owner_id=bob.pk, conversation_id=conversation.pk)
    assert (
        selectors.conversation_to_reply_in(owner_id=bob.pk, conversation_id=conversation.pk) is None
    )
