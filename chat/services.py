"""Writes. Each is one short sync transaction; async callers bridge with database_sync_to_async."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from chat import selectors
from chat.models import Conversation, Message
from providers.base import ChatMessage
from providers.events import Usage


class ConversationNotFound(Exception):
    pass


class MessageNotFound(Exception):
    pass


class ReplyInProgress(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ReplyStart:
    assistant: Message
    history: list[ChatMessage]
    # The user's message (None for a retry, which reuses the history as it is).
    user_message: Message | None = None
    # True when this `client_id` was already sent: nothing new was started.
    duplicate: bool = False


def conversation_create(*, owner_id: int, model: str | None = None) -> Conversation:
    return Conversation.objects.create(owner_id=owner_id, model=model or settings.DEFAULT_MODEL)


def _new_assistant(conversation: Conversation, *, model: str, provider: str) -> Message:
    return Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model=model,
        provider=provider,
        heartbeat_at=timezone.now(),
    )


def reply_begin(
    *,
    owner_id: int,
    conversation_id: int,
    content: str,
    client_id: str | None,
    model: str,
    provider: str,
) -> ReplyStart:
    """Save the person's message and a streaming placeholder for the reply, atomically."""
    try:
        with transaction.atomic():
            conversation = (
                Conversation.objects.select_for_update()
                .filter(pk=conversation_id, owner_id=owner_id)
                .first()
            )
            if conversation is None:
                raise ConversationNotFound()
            if client_id:
                sent = conversation.messages.filter(role="user", client_id=client_id).first()
                if sent is not None:
                    reply = conversation.messages.filter(pk__gt=sent.pk, role="assistant").first()
                    if reply is not None:
                        return ReplyStart(
                            assistant=reply, history=[], user_message=sent, duplicate=True
                        )
            if conversation.messages.filter(status=Message.Status.STREAMING).exists():
                raise ReplyInProgress()
            user_message = Message.objects.create(
                conversation=conversation,
                role=Message.Role.USER,
                content=content,
                client_id=client_id or "",
            )
            assistant = _new_assistant(conversation, model=model, provider=provider)
            conversation.model = model
            conversation.save(update_fields=["model", "updated_at"])
    except IntegrityError:
        # Another worker won the race for this conversation's one streaming slot or client_id.
        raise ReplyInProgress() from None
    history = selectors.provider_history(conversation_id=conversation_id, before_id=assistant.pk)
    return ReplyStart(assistant=assistant, history=history, user_message=user_message)


def reply_begin_retry(
    *, owner_id: int, conversation_id: int, message_id: int, model: str, provider: str
) -> ReplyStart:
    """Start a new attempt at the conversation's last reply, if it ended without completing."""
    retryable = (Message.Status.ERROR, Message.Status.STOPPED, Message.Status.INTERRUPTED)
    try:
        with transaction.atomic():
            conversation = (
                Conversation.objects.select_for_update()
                .filter(pk=conversation_id, owner_id=owner_id)
                .first()
            )
            if conversation is None:
                raise ConversationNotFound()
            last = conversation.messages.order_by("-id").first()
            if last is None or last.pk != message_id or last.role != Message.Role.ASSISTANT:
                raise MessageNotFound()
            if last.status not in retryable:
                if last.status == Message.Status.STREAMING:
                    raise ReplyInProgress()
                raise MessageNotFound()
            last.status = Message.Status.STREAMING
            last.content = last.thinking = last.stop_reason = ""
            last.error_code = last.error_message = ""
            last.model, last.provider = model, provider
            last.heartbeat_at = timezone.now()
            last.save()
            assistant = last
            conversation.model = model
            conversation.save(update_fields=["model", "updated_at"])
    except IntegrityError:
        raise ReplyInProgress() from None
    history = selectors.provider_history(conversation_id=conversation_id, before_id=assistant.pk)
    return ReplyStart(assistant=assistant, history=history)


def reply_checkpoint(*, rows: Sequence[tuple[int, str, str]]) -> None:
    """Save partial text of many streaming replies in one statement, and touch their heartbeat."""
    now = timezone.now()
    messages = [
        Message(pk=pk, content=content, thinking=thinking, heartbeat_at=now, updated_at=now)
        for pk, content, thinking in rows
    ]
    # Only rows still streaming: a late checkpoint must never overwrite a finished reply.
    Message.objects.filter(status=Message.Status.STREAMING).bulk_update(
        messages, ["content", "thinking", "heartbeat_at", "updated_at"]
    )


def reply_finish(
    *,
    message_id: int,
    status: str,
    content: str,
    thinking: str,
    stop_reason: str = "",
    error_code: str = "",
    error_message: str = "",
    usage: Usage | None = None,
) -> None:
    Message.objects.filter(pk=message_id).update(
        status=status,
        content=content,
        thinking=thinking,
        stop_reason=stop_reason,
        error_code=error_code,
        error_message=error_message,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        heartbeat_at=None,
        updated_at=timezone.now(),
    )
