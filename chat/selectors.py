"""Reads."""

from __future__ import annotations

from typing import Literal, TypeAlias, cast

from django.db.models import QuerySet

from chat.models import Conversation, Message
from providers.base import ChatMessage

Role: TypeAlias = Literal["user", "assistant"]


def conversation_for_owner(*, owner_id: int, conversation_id: int) -> Conversation | None:
    """The conversation if `owner_id` owns it; a foreign id looks exactly like a missing one."""
    return Conversation.objects.filter(pk=conversation_id, owner_id=owner_id).first()


def conversations_for_owner(*, owner_id: int) -> QuerySet[Conversation]:
    return Conversation.objects.filter(owner_id=owner_id)


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.order_by("id")


def latest_exchange(*, conversation_id: int) -> tuple[Message | None, Message | None]:
    """The latest reply and the person's message it answers (what a reconnecting tab needs)."""
    reply = (
        Message.objects.filter(conversation_id=conversation_id, role=Message.Role.ASSISTANT)
        .order_by("-id")
        .first()
    )
    if reply is None:
        return None, None
    asked = (
        Message.objects.filter(
            conversation_id=conversation_id, role=Message.Role.USER, pk__lt=reply.pk
        )
        .order_by("-id")
        .first()
    )
    return asked, reply


def provider_history(*, conversation_id: int, before_id: int) -> list[ChatMessage]:
    """The turns sent upstream for a reply: everything earlier that has text."""
    rows = (
        Message.objects.filter(conversation_id=conversation_id, pk__lt=before_id)
        .exclude(content="")
        .order_by("id")
        .values_list("role", "content")
    )
    return [ChatMessage(role=cast(Role, role), content=content) for role, content in rows]
