"""Starting replies: what the consumer calls for a send or a retry, before a reply runs.

Checks the conversation is the person's, resolves the model and key (the person's own wins),
saves the message and holds the coins in one transaction, then launches the reply
(chat/runner.py). Anything refused here is answered to the requester only.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, TypeAlias, assert_never

from channels.db import database_sync_to_async
from django.db import transaction

from billing import services as billing
from chat import frames, limits, services, shutdown
from chat.frames import EditFrame, RegenerateFrame, RetryFrame, SendFrame
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
from tools import offer

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


# What a request names that is not in the conversation is answered with, by request.
_NOT_HERE = {
    "send": "The message to follow is not in this conversation.",
    "edit": "There is no such message of yours here to edit.",
    "regenerate": "There is no such reply here.",
    "retry": "There is no reply to retry here.",
}

# A request that starts a reply.
Starting: TypeAlias = SendFrame | EditFrame | RegenerateFrame | RetryFrame


def _begin(
    *, user_id: int, session_key: str | None, conversation_id: int, frame: Starting, hub: str
) -> tuple[Resolved, services.ReplyStart, offer.Setup]:
    """Everything before the provider call, in one trip to the database thread: under load
    each trip waits for a turn of the busy event loop (bench/ttft.py). The conversation is read
    once, locked, and stays locked until the reply has started (or was refused). The model is
    the request's if it names one, else the conversation's (the picker's last choice)."""
    _check_paid_action(user_id=user_id, session_key=session_key)
    chosen = None if isinstance(frame, RetryFrame) else frame.model
    try:
        with transaction.atomic():
            conversation = services.conversation_lock(
                owner_id=user_id, conversation_id=conversation_id
            )
            if not chosen:
                conversation = _current_model(conversation)
            resolved = _resolve(chosen or conversation.model, user_id)
            asked = frame.max_tokens if isinstance(frame, SendFrame) else None
            common: dict[str, Any] = {
                "conversation": conversation,
                "model": resolved.model,
                "byok": resolved.credentials.byok,
                "max_tokens": clamp_max_tokens(resolved.model, asked),
                "hub": hub,
            }
            match frame:
                case SendFrame():
                    start = services.reply_begin(
                        content=frame.content,
                        client_id=frame.client_id,
                        parent_id=frame.parent_id,
                        **common,
                    )
                case EditFrame():
                    start = services.reply_begin_edit(
                        message_id=frame.message_id,
                        content=frame.content,
                        client_id=frame.client_id,
                        **common,
                    )
                case RegenerateFrame():
                    start = services.reply_begin_regenerate(message_id=frame.message_id, **common)
                case RetryFrame():
                    start = services.reply_begin_retry(message_id=frame.message_id, **common)
                case _:
                    assert_never(frame)
            # The tools it may call: the admin's switches, the model's and the person's.
            tools = offer.offered_setup(
                offer.setup(), resolved.model, conversation_allows=conversation.tools_enabled
            )
    except services.ConversationNotFound:
        raise _no_conversation() from None
    except services.MessageNotFound:
        kind = type(frame).__name__.removesuffix("Frame").lower()
        raise Refused("not_found", _NOT_HERE[kind]) from None
    except services.ReplyInProgress:
        raise _in_progress() from None
    except billing.InsufficientCoins as exc:
        raise _no_coins(exc) from None
    return resolved, start, tools


async def start_reply(
    *, user_id: int, session_key: str | None, conversation_id: int, frame: Starting
) -> list[str]:
    """Start a reply: to a new message (send), to a new version of one (edit), beside a reply
    (regenerate) or again in place of one that failed (retry). Every tab of the conversation
    is told; returns frames for the requester only (a resent send's)."""
    if shutdown.closing():
        raise _restarting()
    await model_sync.areload()
    hub = get_hub()
    await hub.start()
    resolved, start, tools = await database_sync_to_async(_begin)(
        user_id=user_id,
        session_key=session_key,
        conversation_id=conversation_id,
        frame=frame,
        hub=hub.channel,
    )
    user_frames = [] if start.user_message is None else [frames.user_message_of(start.user_message)]
    if start.duplicate:
        return user_frames
    reply = Reply(
        hub=hub,
        owner_id=user_id,
        conversation_id=conversation_id,
        resolved=resolved,
        start=start,
        tool_setup=tools,
    )
    await reply.launch([*user_frames, reply.start_frame()])
    return []


async def select_branch(*, user_id: int, conversation_id: int, message_id: int) -> None:
    """Make the branch through a message the current one; every tab of the conversation, on
    every worker, follows (`branch`)."""
    try:
        path = await database_sync_to_async(services.branch_select)(
            owner_id=user_id, conversation_id=conversation_id, message_id=message_id
        )
    except services.ConversationNotFound:
        raise _no_conversation() from None
    except services.MessageNotFound:
        raise Refused("not_found", "There is no such message here.") from None
    await get_hub().announce(
        conversation_id, frames.branch(conversation_id=conversation_id, path=path)
    )
