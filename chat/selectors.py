"""Reads."""

from __future__ import annotations

from typing import Literal, TypeAlias, cast

from django.db.models import QuerySet

from billing.models import LlmUsage
from chat.models import Conversation, Message
from chat.tree import path_to
from providers.base import ChatMessage

Role: TypeAlias = Literal["user", "assistant"]

# What a socket is sent when it opens (hub.catch_up): the latest reply, the message it answers
# (and, if the reply streams, the hub running it).
_SHOWN = (
    "id", "parent_id", "role", "content", "thinking", "tools", "status", "client_id", "hub",
)  # fmt: skip


def conversation_for_owner(*, owner_id: int, conversation_id: int) -> Conversation | None:
    """The conversation if `owner_id` owns it; a foreign id looks exactly like a missing one,
    and so does a deleted one."""
    return _owned(owner_id, conversation_id).first()


def _owned(owner_id: int, conversation_id: int) -> QuerySet[Conversation]:
    return Conversation.objects.filter(
        pk=conversation_id, owner_id=owner_id, deleted_at__isnull=True
    )


def owns_conversation(*, owner_id: int, conversation_id: int, lock: bool = False) -> bool:
    """`conversation_for_owner` as a yes or no, for every socket's handshake. With `lock`, no
    reply can start in the conversation until the transaction ends (a reply's start locks the
    row for update), so the socket is either seen by it or sees it (chat/hub.py)."""
    return owned_leaf(owner_id=owner_id, conversation_id=conversation_id, lock=lock)[0]


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
    """`conversation_for_owner` with only what a reply needs loaded (its model, its branch,
    whether it has a title), locked until the transaction ends if `lock`."""
    found = _owned(owner_id, conversation_id).only(
        "id",
        "owner_id",
        "model",
        "model_note",
        "current_leaf_id",
        "title",
        "title_by_person",
        "tools_enabled",
    )
    if lock:
        found = found.select_for_update()
    return found.first()


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.order_by("id")


def latest_exchange(*, conversation_id: int) -> tuple[Message | None, Message | None]:
    """The reply streaming now, else the latest one, and the person's message it answers (what
    a reconnecting tab needs), with what a tab is sent of them loaded."""
    asked, reply, _ = exchange_and_tree(conversation_id=conversation_id)
    return asked, reply


def exchange_and_tree(
    *, conversation_id: int
) -> tuple[Message | None, Message | None, dict[int, int | None]]:
    """`latest_exchange`, and every message's parent (chat/tree.py), in two queries: the tree's
    narrow columns, then the two messages' shown ones."""
    rows = list(
        Message.objects.filter(conversation_id=conversation_id).values_list(
            "id", "parent_id", "role", "status"
        )
    )
    parents: dict[int, int | None] = {pk: parent for pk, parent, _, _ in rows}
    # A retried reply streams again under its own (older) id: it comes first.
    replies = [
        (status == Message.Status.STREAMING, pk)
        for pk, _, role, status in rows
        if role == Message.Role.ASSISTANT
    ]
    if not replies:
        return None, None, parents
    _, reply_id = max(replies)
    asked_id = parents[reply_id]
    shown = Message.objects.filter(pk__in=[reply_id, asked_id or reply_id]).only(*_SHOWN)
    by_id = {message.pk: message for message in shown}
    return by_id.get(asked_id) if asked_id else None, by_id.get(reply_id), parents


def tree(*, conversation_id: int) -> dict[int, int | None]:
    """Every message's parent, by id (chat/tree.py)."""
    return dict(
        Message.objects.filter(conversation_id=conversation_id).values_list("id", "parent_id")
    )


def current_branch(*, conversation_id: int) -> list[int]:
    """The ids of the conversation's current branch, from its root."""
    leaf = (
        Conversation.objects.filter(pk=conversation_id)
        .values_list("current_leaf_id", flat=True)
        .first()
    )
    return path_to(tree(conversation_id=conversation_id), leaf)


def owned_leaf(
    *, owner_id: int, conversation_id: int, lock: bool = False
) -> tuple[bool, int | None]:
    """`owns_conversation`, and the end of its current branch (None before its first message),
    in the one query."""
    owned = _owned(owner_id, conversation_id)
    if lock:
        # Conflicts with a reply's start (FOR UPDATE), not with rows that refer to it.
        owned = owned.select_for_update(no_key=True)
    row = owned.values_list("id", "current_leaf_id").first()
    return (row is not None, row[1] if row else None)


def provider_history(*, conversation_id: int, up_to: int | None) -> list[ChatMessage]:
    """The turns sent upstream for a reply: the branch from its root to `up_to` (the message
    the reply answers), those of them that have text."""
    rows = {
        pk: (parent, role, content)
        for pk, parent, role, content in Message.objects.filter(
            conversation_id=conversation_id
        ).values_list("id", "parent_id", "role", "content")
    }
    path = path_to({pk: row[0] for pk, row in rows.items()}, up_to)
    return [
        ChatMessage(role=cast(Role, rows[pk][1]), content=rows[pk][2]) for pk in path if rows[pk][2]
    ]


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
    """The coins each reply's latest run charged (the figure its `message_stop` carried), by
    message id: what the page shows under a reply after a reload. A run is its provider calls
    from its first round's (a tool loop's rounds are billed one by one; an earlier run, one
    the person retried, is not part of it)."""
    rows = (
        LlmUsage.objects.filter(message_id__in=message_ids, purpose=LlmUsage.Purpose.REPLY)
        .order_by("message_id", "-id")
        .values_list("message_id", "round", "coins_charged")
    )
    charges: dict[int, int] = {}
    complete: set[int] = set()
    for message_id, round_number, coins in rows:
        if message_id is None or message_id in complete:
            continue
        charges[message_id] = charges.get(message_id, 0) + coins
        if round_number == 1:
            complete.add(message_id)  # the run's first call: what is older is another run's
    return charges
