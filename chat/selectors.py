"""Reads."""

from __future__ import annotations

from typing import Literal, TypeAlias, cast

from django.db.models import QuerySet

from billing.models import LlmUsage
from chat.models import Conversation, Message
from providers.base import ChatMessage

Role: TypeAlias = Literal["user", "assistant"]

# What a socket is sent when it opens (hub.catch_up): the latest reply, the message it answers
# (and, if the reply streams, the hub running it).
_SHOWN = ("id", "role", "content", "thinking", "status", "client_id", "hub")


def conversation_for_owner(*, owner_id: int, conversation_id: int) -> Conversation | None:
    """The conversation if `owner_id` owns it; a foreign id looks exactly like a missing one."""
    return Conversation.objects.filter(pk=conversation_id, owner_id=owner_id).first()


def owns_conversation(*, owner_id: int, conversation_id: int, lock: bool = False) -> bool:
    """`conversation_for_owner` as a yes or no, for every socket's handshake. With `lock`, no
    reply can start in the conversation until the transaction ends (a reply's start locks the
    row for update), so the socket is either seen by it or sees it (chat/hub.py)."""
    owned = Conversation.objects.filter(pk=conversation_id, owner_id=owner_id)
    if lock:
        # Conflicts with a reply's start (FOR UPDATE), not with rows that refer to it.
        owned = owned.select_for_update(no_key=True)
    return owned.exists()


def reply_hub(*, conversation_id: int) -> str | None:
    """The channel of the hub running the conversation's streaming reply, if one streams."""
    hub = (
        Message.objects.filter(conversation_id=conversation_id, status=Message.Status.STREAMING)
        .values_list("hub", flat=True)
        .first()
    )
    return hub or None


def conversation_to_reply_in(
    *, owner_id: int, conversation_id: int, lock: bool = False
) -> Conversation | None:
    """`conversation_for_owner` with only what a reply needs loaded (its model), locked until
    the transaction ends if `lock`."""
    found = Conversation.objects.filter(pk=conversation_id, owner_id=owner_id).only(
        "id", "owner_id", "model", "model_note"
    )
    if lock:
        found = found.select_for_update()
    return found.first()


def conversations_for_owner(*, owner_id: int) -> QuerySet[Conversation]:
    return Conversation.objects.filter(owner_id=owner_id)


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.order_by("id")


def latest_exchange(*, conversation_id: int) -> tuple[Message | None, Message | None]:
    """The latest reply and the person's message it answers (what a reconnecting tab needs),
    with what a tab is sent of them loaded."""
    messages = Message.objects.filter(conversation_id=conversation_id).only(*_SHOWN)
    reply = messages.filter(role=Message.Role.ASSISTANT).order_by("-id").first()
    if reply is None:
        return None, None
    asked = messages.filter(role=Message.Role.USER, id__lt=reply.pk).order_by("-id").first()
    return asked, reply


def provider_history(*, conversation_id: int, before_id: int) -> list[ChatMessage]:
    """The turns sent upstream for a reply: everything earlier that has text."""
    rows = (
        Message.objects.filter(conversation_id=conversation_id, id__lt=before_id)
        .exclude(content="")
        .order_by("id")
        .values_list("role", "content")
    )
    return [ChatMessage(role=cast(Role, role), content=content) for role, content in rows]


def title_calls(*, message_ids: list[int]) -> dict[int, LlmUsage]:
    """The title call that followed each reply (the latest, if one was tried again with another
    model), by the reply's message id."""
    rows = LlmUsage.objects.filter(
        message_id__in=message_ids, purpose=LlmUsage.Purpose.TITLE
    ).order_by("message_id", "-id")
    calls: dict[int, LlmUsage] = {}
    for row in rows:
        if row.message_id is not None:
            calls.setdefault(row.message_id, row)
    return calls


def reply_charges(*, message_ids: list[int]) -> dict[int, int]:
    """The coins each reply's latest provider call charged (the figure its `message_stop`
    carried), by message id: what the page shows under a reply after a reload."""
    rows = (
        LlmUsage.objects.filter(message_id__in=message_ids, purpose=LlmUsage.Purpose.REPLY)
        .order_by("message_id", "-id")
        .values_list("message_id", "coins_charged")
    )
    charges: dict[int, int] = {}
    for message_id, coins in rows:
        if message_id is not None:
            charges.setdefault(message_id, coins)
    return charges
