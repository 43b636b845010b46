"""Checkpoints: one batch saves the partial text of every live reply, never a finished one."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from chat import services
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db


def _reply(alice: Any, status: str, content: str = "") -> Message:
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    return Message.objects.create(
        conversation=conversation, role="assistant", status=status, content=content
    )


def test_checkpoint_saves_text_thinking_and_heartbeat_of_streaming_replies(alice: Any) -> None:
    first, second = _reply(alice, "streaming"), _reply(alice, "streaming")
    before = timezone.now()
    services.reply_checkpoint(
        rows=[(first.pk, "Hello, wor", "Let me think"), (second.pk, "Ça va ? 🙂 'quoted'", "")]
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.content, first.thinking) == ("Hello, wor", "Let me think")
    assert (second.content, second.thinking) == ("Ça va ? 🙂 'quoted'", "")
    assert first.heartbeat_at is not None and first.heartbeat_at >= before
    assert first.updated_at >= before


def test_checkpoint_never_overwrites_a_reply_that_has_ended(alice: Any) -> None:
    ended = _reply(alice, "complete", content="The whole answer.")
    live = _reply(alice, "streaming")
    services.reply_checkpoint(rows=[(ended.pk, "The whole", ""), (live.pk, "Partial", "")])
    ended.refresh_from_db()
    live.refresh_from_db()
    assert ended.content == "The whole answer."
    assert ended.heartbeat_at is None
    assert live.content == "Partial"


def test_an_empty_checkpoint_writes_nothing(alice: Any, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        services.reply_checkpoint(rows=[])
