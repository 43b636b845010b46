"""Starting replies: what the consumer calls for a send or a retry, before a reply runs.

Checks the conversation is the person's, resolves the model and key (the person's own wins),
saves the message and holds the coins in one transaction, then launches the reply
(chat/runner.py). Anything refused here is answered to the requester only.
"""

from __future__ import annotations

import datetime as dt
import logging

from channels.db import database_sync_to_async

from billing import services as billing
from chat import frames, selectors, services
from chat.frames import SendFrame
from chat.hub import get_hub, user_message_frame
from chat.model_choice import conversation_model_refresh
from chat.models import Conversation
from chat.runner import Reply
from providers import model_sync
from providers import services as key_services
from providers.catalogue import find_model, get_model
from providers.errors import ProviderError
from providers.keys import KeyDecryptionError
from providers.limits import clamp_max_tokens
from providers.registry import Resolved, base_url, resolve

logger = logging.getLogger(__name__)


class Refused(Exception):
    """A request the runner turned down before any reply began; sent to the requester only."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def frame(self) -> str:
        return frames.error_frame(code=self.code, message=self.message, retryable=False)


async def _resolve(model_id: str, user_id: int) -> Resolved:
    """The model's adapter and key: the person's own key for its provider if they saved one."""
    await model_sync.areload()
    try:
        model = get_model(model_id)
        own = await database_sync_to_async(key_services.own_credentials)(
            user_id=user_id, provider=model.provider, base_url=base_url(model.provider)
        )
        return resolve(model_id, own=own)
    except ProviderError as exc:
        raise Refused(exc.code, exc.message) from None
    except KeyDecryptionError:
        logger.error("a stored key of person %s could not be decrypted", user_id)
        raise Refused(
            "auth", "Your saved key could not be read. Save it again on the keys page."
        ) from None


async def _current_model(conversation: Conversation) -> Conversation:
    """The conversation, moved to its model's successor if that model retired."""
    await model_sync.areload()
    model = find_model(conversation.model)
    if model is None or model.lifecycle(dt.date.today()) != "retired":
        return conversation  # the common case, decided without a database round trip
    return await database_sync_to_async(conversation_model_refresh)(conversation=conversation)


_IN_PROGRESS = Refused(
    "invalid_request",
    "A reply is still being written in this conversation. Wait for it, or stop it first.",
)
_NO_CONVERSATION = Refused("not_found", "This conversation does not exist.")


def _no_coins(exc: billing.InsufficientCoins) -> Refused:
    return Refused("insufficient_coins", exc.message)


async def send_reply(*, user_id: int, conversation_id: int, frame: SendFrame) -> list[str]:
    """Save the person's message and start the reply; returns frames for the requester only."""
    conversation = await database_sync_to_async(selectors.conversation_for_owner)(
        owner_id=user_id, conversation_id=conversation_id
    )
    if conversation is None:
        raise _NO_CONVERSATION
    if not frame.model:
        conversation = await _current_model(conversation)
    resolved = await _resolve(frame.model or conversation.model, user_id)
    try:
        start = await database_sync_to_async(services.reply_begin)(
            owner_id=user_id,
            conversation_id=conversation_id,
            content=frame.content,
            client_id=frame.client_id,
            model=resolved.model,
            byok=resolved.credentials.byok,
            max_tokens=clamp_max_tokens(resolved.model, frame.max_tokens),
        )
    except services.ConversationNotFound:
        raise _NO_CONVERSATION from None
    except services.ReplyInProgress:
        raise _IN_PROGRESS from None
    except billing.InsufficientCoins as exc:
        raise _no_coins(exc) from None
    assert start.user_message is not None
    user_frame = user_message_frame(start.user_message)
    if start.duplicate:
        return [user_frame]
    reply = Reply(
        hub=get_hub(),
        owner_id=user_id,
        conversation_id=conversation_id,
        resolved=resolved,
        start=start,
    )
    await reply.launch([user_frame, reply.start_frame()])
    return []


async def retry_reply(*, user_id: int, conversation_id: int, message_id: int) -> None:
    """Regenerate the conversation's last reply, which ended in error, stopped or interrupted."""
    conversation = await database_sync_to_async(selectors.conversation_for_owner)(
        owner_id=user_id, conversation_id=conversation_id
    )
    if conversation is None:
        raise _NO_CONVERSATION
    conversation = await _current_model(conversation)
    resolved = await _resolve(conversation.model, user_id)
    try:
        start = await database_sync_to_async(services.reply_begin_retry)(
            owner_id=user_id,
            conversation_id=conversation_id,
            message_id=message_id,
            model=resolved.model,
            byok=resolved.credentials.byok,
            max_tokens=clamp_max_tokens(resolved.model, None),
        )
    except (services.ConversationNotFound, services.MessageNotFound):
        raise Refused("not_found", "There is no reply to retry here.") from None
    except services.ReplyInProgress:
        raise _IN_PROGRESS from None
    except billing.InsufficientCoins as exc:
        raise _no_coins(exc) from None
    reply = Reply(
        hub=get_hub(),
        owner_id=user_id,
        conversation_id=conversation_id,
        resolved=resolved,
        start=start,
    )
    await reply.launch([reply.start_frame()])
