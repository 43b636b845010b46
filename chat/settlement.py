"""A reply's settlement: its final text, its bill and its LlmUsage row, saved at once, and the
frame that tells the tabs how it ended; and the row of every failed attempt before it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async

from billing import services as billing
from chat import frames, services
from chat.models import Message
from providers.errors import ProviderError

if TYPE_CHECKING:
    from chat.runner import Reply

logger = logging.getLogger(__name__)


async def settle(reply: Reply, status: str, error: ProviderError | None) -> str:
    """Save the reply's ending and bill it (one transaction); the frame that ends it."""
    content, thinking = reply.text.value(), reply.thinking.value()
    produced = reply.text.length + reply.thinking.length
    if not produced:
        # A retry that produced nothing leaves the earlier text where it was.
        content, thinking = reply.previous
    usage = billing.billable_usage(
        reply.usage, produced_output=produced > 0, final=reply.final_usage, text_length=produced
    )
    now = reply.loop.time()
    attempt = services.Attempt(
        owner_id=reply.owner_id,
        conversation_id=reply.conversation_id,
        message_id=reply.message_id,
        model=reply.resolved.model,
        byok=reply.resolved.credentials.byok,
        hold=reply.hold,
        reference=reply.reference,
        attempt=reply.attempt,
        usage=usage,
        usage_estimated=produced > 0 and not reply.final_usage,
        time_to_first_token_ms=_ms(reply.first_delta_at, reply.started_at),
        duration_ms=_ms(now, reply.started_at) or 0,
    )
    settled: billing.Settlement | None = None
    try:
        settled = await database_sync_to_async(services.reply_settle)(
            attempt=attempt,
            status=status,
            content=content,
            thinking=thinking,
            thinking_signature="\n".join(reply.signatures),
            stop_reason=_stop_reason(reply, status),
            error_code=error.code if error else "",
            error_message=error.message if error else "",
        )
    except Exception:
        logger.exception("could not save the end of reply %s", reply.message_id)
    reply.usage = usage
    return _end_frame(reply, status, error, settled)


def _stop_reason(reply: Reply, status: str) -> str:
    return "stopped" if status == Message.Status.STOPPED else reply.stop_reason


def _end_frame(
    reply: Reply, status: str, error: ProviderError | None, settled: billing.Settlement | None
) -> str:
    content = reply.text.value()
    if error is not None:
        return frames.error(
            code=error.code,
            message=error.message,
            retryable=error.retryable,
            message_id=reply.message_id,
            partial_content=content,
        )
    if status == Message.Status.INTERRUPTED:
        return frames.error(
            code="interrupted",
            message="The reply was interrupted. You can retry it.",
            retryable=True,
            message_id=reply.message_id,
            partial_content=content,
        )
    return frames.message_stop(
        message_id=reply.message_id,
        stop_reason=_stop_reason(reply, status),
        input_tokens=reply.usage.input_tokens,
        output_tokens=reply.usage.output_tokens,
        provider=reply.resolved.model.provider,
        byok=reply.resolved.credentials.byok,
        coins_charged=settled.coins_charged if settled else 0,
        balance=settled.balance if settled else None,
    )


async def record_failed_attempt(reply: Reply, error: ProviderError) -> None:
    """Every attempt leaves an LlmUsage row; a failed one before any output costs nothing."""
    try:
        await database_sync_to_async(billing.usage_record)(
            user_id=reply.owner_id,
            conversation_id=reply.conversation_id,
            message_id=reply.message_id,
            provider=reply.resolved.model.provider,
            model=reply.resolved.model.id,
            byok=reply.resolved.credentials.byok,
            status="error",
            error_code=error.code,
            attempt=reply.attempt,
            duration_ms=_ms(reply.loop.time(), reply.started_at) or 0,
        )
    except Exception:
        logger.exception("could not record attempt %s of reply %s", reply.attempt, reply.message_id)


def _ms(later: float | None, earlier: float) -> int | None:
    return None if later is None else max(0, round((later - earlier) * 1000))
