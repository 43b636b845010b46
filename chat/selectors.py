"""Reads."""

from __future__ import annotations

from typing import Literal, TypeAlias, cast

from django.db.models import QuerySet

from chat.models import Conversation, Message
from chatsite import sql
from providers.base import ChatMessage

Role: TypeAlias = Literal["user", "assistant"]

# The reply path's reads, in hand-written SQL (chatsite/sql.py says why).
_OWNED = sql.Rows(
    Conversation, ["id", "owner_id", "model", "model_note"], "id = %s AND owner_id = %s"
)
_MESSAGES = Message._meta.db_table
_HISTORY = (
    f"SELECT role, content FROM {_MESSAGES} "
    "WHERE conversation_id = %s AND id < %s AND content <> '' ORDER BY id"
)
_SENT = f"SELECT id FROM {_MESSAGES} WHERE conversation_id = %s AND role = %s AND client_id = %s"


def conversation_for_owner(*, owner_id: int, conversation_id: int) -> Conversation | None:
    """The conversation if `owner_id` owns it; a foreign id looks exactly like a missing one."""
    return Conversation.objects.filter(pk=conversation_id, owner_id=owner_id).first()


def conversation_to_reply_in(
    *, owner_id: int, conversation_id: int, lock: bool = False
) -> Conversation | None:
    """`conversation_for_owner` with only what a reply needs loaded (its model), locked until
    the transaction ends if `lock`."""
    return _OWNED.first([conversation_id, owner_id], lock=lock)


def sent_before(*, conversation_id: int, client_id: str) -> bool:
    """Whether the person's message with this `client_id` is already saved (a resent send)."""
    return sql.one(_SENT, [conversation_id, Message.Role.USER, client_id]) is not None


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
    rows = sql.every(_HISTORY, [conversation_id, before_id])
    return [ChatMessage(role=cast(Role, role), content=content) for role, content in rows]
