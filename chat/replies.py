"""Starting replies: what the consumer calls for a send or a retry, before a reply runs.

Checks the conversation is the person's, resolves the model and key (the person's own wins),
saves the message and holds the coins in one transaction, then launches the reply
(chat/runner.py). Anything refused here is answered to the requester only.
"""

from __future__ import annotations

import datetime as dt
import logging

from channels.db import database_sync_to_async
from django.db import transaction

from billing import services as billing
from chat import frames, limits, services, shutdown
from chat.frames import SendFrame
from chat.hub import get_hub
from chat.model_choice import conversation_model_refresh
from chat.models import Conversation
from chat.runner import Reply
from chatsite.accounts import still_signed_in
from providers import model_sync, registry
from providers import services as key_services
from providers.catalogue import find_model, get_model
from providers.errors import ProviderError
from providers.keys import KeyDecryptionError
from providers.limits import clamp_max_tokens
from providers.resolution import Resolved, resolve

logger = logging.getLogger(__name__)


class Refused(Exception):
    """A request the runner turned down before any reply began; sent to the requester only."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        signed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        # The socket's session no longer signs the person in: the consumer closes it.
        self.signed_out = signed_out

    def frame(self, *, client_id: str | None = None) -> str:
        """The `error` frame for the requester (`client_id`: the refused send's)."""
        return frames.error(
            code=self.code,
            message=self.message,
            retryable=self.retryable,
            retry_after=self.retry_after,
            client_id=client_id,
        )


# Refusals are made fresh each time: an exception instance raised again keeps every earlier
# traceback (and the frames it holds) alive.


def _signed_out() -> Refused:
    return Refused("auth", "You have been signed out. Sign in again.", signed_out=True)


def _in_progress() -> Refused:
    return Refused(
        "invalid_request",
        "A reply is still being written in this conversation. Wait for it, or stop it first.",
    )


def _no_conversation() -> Refused:
    return Refused("not_found", "This conversation does not exist.")


def _no_coins(exc: billing.InsufficientCoins) -> Refused:
    return Refused("insufficient_coins", exc.message)


def _restarting() -> Refused:
    return Refused(
        "unavailable",
        "This server is restarting, so your message was not sent. Send it again in a moment.",
        retryable=True,
    )


def _check_paid_action(*, user_id: int, session_key: str | None) -> None:
    """Before a send or retry: is the person still signed in (not logged out, same password,
    account active), and within the per-minute limit? Counts the action."""
    if not still_signed_in(user_id=user_id, session_key=session_key):
        raise _signed_out()
    wait = limits.paid_action_wait(user_id=user_id)
    if wait is not None:
        raise Refused(
            "rate_limited",
            f"You are sending messages too fast. Try again in {wait:.0f} s.",
            retryable=True,
            retry_after=wait,
        )


def _resolve(model_id: str, user_id: int) -> Resolved:
    """The model's adapter and key: the person's own key for its provider if they saved one."""
    try:
        model = get_model(model_id)
        own = key_services.own_credentials(
            user_id=user_id, provider=model.provider, base_url=registry.base_url(model.provider)
        )
        return resolve(model_id, own=own)
    except ProviderError as exc:
        raise Refused(exc.code, exc.message) from None
    except KeyDecryptionError:
        logger.error("a stored key of person %s could not be decrypted", user_id)
        raise Refused(
            "auth", "Your saved key could not be read. Save it again on the keys page."
        ) from None


def _current_model(conversation: Conversation) -> Conversation:
    """The conversation, moved to its model's successor if that model retired."""
    model = find_model(conversation.model)
    if model is None or model.lifecycle(dt.date.today()) != "retired":
        return conversation  # the common case, decided without a database round trip
    return conversation_model_refresh(conversation=conversation)


def _begin_send(
    *, user_id: int, session_key: str | None, conversation_id: int, frame: SendFrame, hub: str
) -> tuple[Resolved, services.ReplyStart]:
    """Everything before the provider call, in one trip to the database thread: under load
    each trip waits for a turn of the busy event loop (bench/ttft.py). The conversation is read
    once, locked, and stays locked until the reply has started (or was refused)."""
    _check_paid_action(user_id=user_id, session_key=session_key)
    try:
        with transaction.atomic():
            conversation = services.conversation_lock(
                owner_id=user_id, conversation_id=conversation_id
            )
            if not frame.model:
                conversation = _current_model(conversation)
            resolved = _resolve(frame.model or conversation.model, user_id)
            start = services.reply_begin(
                conversation=conversation,
                content=frame.content,
                client_id=frame.client_id,
                model=resolved.model,
                byok=resolved.credentials.byok,
                max_tokens=clamp_max_tokens(resolved.model, frame.max_tokens),
                hub=hub,
            )
    except services.ConversationNotFound:
        raise _no_conversation() from None
    except services.ReplyInProgress:
        raise _in_progress() from None
    except billing.InsufficientCoins as exc:
        raise _no_coins(exc) from None
    return resolved, start


def _begin_retry(
    *, user_id: int, session_key: str | None, conversation_id: int, message_id: int, hub: str
) -> tuple[Resolved, services.ReplyStart]:
    _check_paid_action(user_id=user_id, session_key=session_key)
    try:
        with transaction.atomic():
            conversation = _current_model(
                services.conversation_lock(owner_id=user_id, conversation_id=conversation_id)
            )
            resolved = _resolve(conversation.model, user_id)
            start = services.reply_begin_retry(
                conversation=conversation,
                message_id=message_id,
                model=resolved.model,
                byok=resolved.credentials.byok,
                max_tokens=clamp_max_tokens(resolved.model, None),
                hub=hub,
            )
    except services.ConversationNotFound:
        raise _no_conversation() from None
    except services.MessageNotFound:
        raise Refused("not_found", "There is no reply to retry here.") from None
    except services.ReplyInProgress:
        raise _in_progress() from None
    except billing.InsufficientCoins as exc:
        raise _no_coins(exc) from None
    return resolved, start


async def send_reply(
    *, user_id: int, session_key: str | None, conversation_id: int, frame: SendFrame
) -> list[str]:
    """Save the person's message and start the reply; returns frames for the requester only."""
    if shutdown.closing():
        raise _restarting()
    await model_sync.areload()
    hub = get_hub()
    await hub.start()
    resolved, start = await database_sync_to_async(_begin_send)(
        user_id=user_id,
        session_key=session_key,
        conversation_id=conversation_id,
        frame=frame,
        hub=hub.channel,
    )
    assert start.user_message is not None
    user_frame = frames.user_message_of(start.user_message)
    if start.duplicate:
        return [user_frame]
    reply = Reply(
        hub=hub,
        owner_id=user_id,
        conversation_id=conversation_id,
        resolved=resolved,
        start=start,
    )
    await reply.launch([user_frame, reply.start_frame()])
    return []


async def retry_reply(
    *, user_id: int, session_key: str | None, conversation_id: int, message_id: int
) -> None:
    """Regenerate the conversation's last reply, which ended in error, stopped or interrupted."""
    if shutdown.closing():
        raise _restarting()
    await model_sync.areload()
    hub = get_hub()
    await hub.start()
    resolved, start = await database_sync_to_async(_begin_retry)(
        user_id=user_id,
        session_key=session_key,
        conversation_id=conversation_id,
        message_id=message_id,
        hub=hub.channel,
    )
    reply = Reply(
        hub=hub,
        owner_id=user_id,
        conversation_id=conversation_id,
        resolved=resolved,
        start=start,
    )
    await reply.launch([reply.start_frame()])
