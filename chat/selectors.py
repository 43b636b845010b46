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
_OWNS = f"SELECT 1 FROM {Conversation._meta.db_table} WHERE id = %s AND owner_id = %s"
_OWNER_HUB = f"SELECT hub FROM {_MESSAGES} WHERE conversation_id = %s AND status = %s"
# What a socket is sent when it opens (hub.subscribe): the latest reply, the message it answers
# (and, if the reply streams, the hub running it).
_SHOWN = ["id", "role", "content", "thinking", "status", "client_id", "hub"]
_LATEST_REPLY = sql.Rows(
    Message, _SHOWN, "conversation_id = %s AND role = %s ORDER BY id DESC LIMIT 1"
)
_ASKED_BEFORE = sql.Rows(
    Message, _SHOWN, "conversation_id = %s AND role = %s AND id < %s ORDER BY id DESC LIMIT 1"
)


def conversation_for_owner(*, owner_id: int, conversation_id: int) -> Conversation | None:
    """The conversation if `owner_id` owns it; a foreign id looks exactly like a missing one."""
    return Conversation.objects.filter(pk=conversation_id, owner_id=owner_id).first()


def owns_conversation(*, owner_id: int, conversation_id: int, lock: bool = False) -> bool:
    """`conversation_for_owner` as a yes or no, for every socket's handshake. With `lock`, no
    reply can start in the conversation until the transaction ends (a reply's start locks the
    row for update), so the socket is either seen by it or sees it (chat/hub.py)."""
    suffix = sql.for_share() if lock else ""
    return sql.one(_OWNS + suffix, [conversation_id, owner_id]) is not None


def reply_hub(*, conversation_id: int) -> str | None:
    """The channel of the hub running the conversation's streaming reply, if one streams."""
    row = sql.one(_OWNER_HUB, [conversation_id, Message.Status.STREAMING])
    if row is None or not row[0]:
        return None
    return str(row[0])


def conversation_to_reply_in(
    *, owner_id: int, conversation_id: int, lock: bool = False
) -> Conversation | None:
    """`conversation_for_owner` with only what a reply needs loaded (its model), locked until
    the transaction ends if `lock`."""
    return _OWNED.first([conversation_id, owner_id], lock=lock)


def conversations_for_owner(*, owner_id: int) -> QuerySet[Conversation]:
    return Conversation.objects.filter(owner_id=owner_id)


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.order_by("id")


def latest_exchange(*, conversation_id: int) -> tuple[Message | None, Message | None]:
    """The latest reply and the person's message it answers (what a reconnecting tab needs),
    with what a tab is sent of them loaded."""
    reply = _LATEST_REPLY.first([conversation_id, Message.Role.ASSISTANT])
    if reply is None:
        return None, None
    asked = _ASKED_BEFORE.first([conversation_id, Message.Role.USER, reply.pk])
    return asked, reply


def provider_history(*, conversation_id: int, before_id: int) -> list[ChatMessage]:
    """The turns sent upstream for a reply: everything earlier that has text."""
    rows = sql.every(_HISTORY, [conversation_id, before_id])
    return [ChatMessage(role=cast(Role, role), content=content) for role, content in rows]
