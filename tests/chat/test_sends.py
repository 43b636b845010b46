"""chat/services.py: a person's message is written in one statement (ON CONFLICT DO NOTHING on
its client_id), and that row is the row the ORM would write."""

from __future__ import annotations

from typing import Any

import pytest

from chat import services
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db


def _row(message: Message) -> dict[str, Any]:
    message.refresh_from_db()
    row = {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields}
    for varying in ("id", "created_at", "updated_at"):
        row.pop(varying)
    return row


def test_a_persons_message_is_the_row_the_orm_writes(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    written = services.user_message_if_new(
        conversation_id=conversation.pk, parent_id=None, content="Grüße 👋", client_id="c-1"
    )
    assert written is not None
    by_orm = Message.objects.create(
        conversation=conversation, role="user", content="Grüße 👋", client_id="c-2"
    )
    assert _row(written) == {**_row(by_orm), "client_id": "c-1"}
    assert written.created_at is not None and written.created_at == written.updated_at


def test_the_statement_sets_every_column_that_is_not_null_and_the_parent() -> None:
    required = {f.column for f in Message._meta.concrete_fields if not f.null and not f.primary_key}
    assert set(services.ASKED_COLUMNS) == required | {"parent_id"}


def test_a_resent_client_id_writes_nothing(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    first = services.user_message_if_new(
        conversation_id=conversation.pk, parent_id=None, content="once", client_id="same"
    )
    again = services.user_message_if_new(
        conversation_id=conversation.pk, parent_id=None, content="twice", client_id="same"
    )
    assert first is not None and again is None
    assert list(conversation.messages.values_list("content", flat=True)) == ["once"]


def test_messages_without_a_client_id_are_all_written(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="demo")
    for content in ("a", "b"):
        assert services.user_message_if_new(
            conversation_id=conversation.pk, parent_id=None, content=content, client_id=""
        )
    assert conversation.messages.count() == 2
