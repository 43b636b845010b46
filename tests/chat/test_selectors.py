"""chat/selectors.py: what a reply is sent upstream and what a socket is caught up with."""

from __future__ import annotations

from typing import Any

import pytest

from chat import selectors
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db


def _line(conversation: Conversation, said: list[tuple[str, str]]) -> list[Message]:
    """Messages one after the other, each following the one before."""
    made: list[Message] = []
    for role, content in said:
        made.append(
            Message.objects.create(
                conversation=conversation,
                role=role,
                content=content,
                parent=made[-1] if made else None,
            )
        )
    return made


def test_the_history_sent_upstream_skips_empty_turns_in_order(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    said = [("user", "Hi"), ("assistant", ""), ("user", "Hello?"), ("assistant", "Hello!")]
    *_, later = _line(conversation, [*said, ("user", "Later")])

    history = selectors.provider_history(conversation_id=conversation.pk, up_to=later.pk)

    assert [(m.role, m.content) for m in history] == [
        ("user", "Hi"),
        ("user", "Hello?"),
        ("assistant", "Hello!"),
        ("user", "Later"),
    ]


def test_the_history_is_the_branch_to_the_message_not_its_siblings(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    asked, first_reply = _line(conversation, [("user", "Hi"), ("assistant", "Hello")])
    Message.objects.create(conversation=conversation, role="assistant", content="Hey", parent=asked)
    edited = Message.objects.create(conversation=conversation, role="user", content="Hi there")
    follow_up = Message.objects.create(
        conversation=conversation, role="user", content="And?", parent=first_reply
    )

    history = selectors.provider_history(conversation_id=conversation.pk, up_to=follow_up.pk)
    assert [m.content for m in history] == ["Hi", "Hello", "And?"]
    history = selectors.provider_history(conversation_id=conversation.pk, up_to=edited.pk)
    assert [m.content for m in history] == ["Hi there"]


def test_the_latest_exchange_is_the_last_reply_and_the_message_it_answers(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    first, one = _line(conversation, [("user", "One"), ("assistant", "1")])
    second = Message.objects.create(
        conversation=conversation, role="user", content="Two", client_id="c-2", parent=one
    )
    reply = Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="2",
        status="streaming",
        hub="h",
        parent=second,
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
