"""A reply's settlement: its final text, its bill and its LlmUsage row, saved at once, and the
frame that tells the tabs how it ended; and the row of every failed attempt before it.

Whatever happens to that save (a database restart, a deadlock, a constraint), what the person
saw is not lost: the text is saved first, on its own; the settle is tried again with backoff;
and if it still cannot be written, the reply is ended with its text and marked `unsettled`,
for every worker's sweep to settle again (chat/maintenance.py) and `reconcile_coins` to list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from channels.db import database_sync_to_async

from billing import services as billing
from chat import frames, services
from chat.models import Message
from providers.errors import ProviderError
from providers.events import Usage

if TYPE_CHECKING:
    from chat.runner import Reply

logger = logging.getLogger(__name__)

# Waits between tries of a reply's settle (about 15 s in all: well inside REPLY_STALE_AFTER,
# while the checkpoints keep its heartbeat fresh), then of its unsettled ending.
SETTLE_RETRY_WAITS = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0)
UNSETTLED_RETRY_WAITS = (1.0, 4.0)

T = TypeVar("T")


def _attempt(reply: Reply, usage: Usage, *, estimated: bool) -> services.Attempt:
    """The reply's current provider call (its round's latest attempt) as it ends."""
    return services.Attempt(
        owner_id=reply.owner_id,
        conversation_id=reply.conversation_id,
        message_id=reply.message_id,
        model=reply.resolved.model,
        byok=reply.resolved.credentials.byok,
        hold=reply.hold,
        reference=reply.reference,
        attempt=reply.attempt,
        usage=usage,
        usage_estimated=estimated,
        time_to_first_token_ms=_ms(reply.first_delta_at, reply.started_at),
        duration_ms=_ms(reply.loop.time(), reply.started_at) or 0,
        round=reply.round,
        call_ended=reply.round_ended,
    )


async def settle(reply: Reply, status: str, error: ProviderError | None) -> str:
    """Save the reply's ending and bill its last call (one transaction); the frame that ends
    it. A reply whose tool loop billed its last call already (the balance could not pay for
    another round) has only its ending saved."""
    content, thinking = reply.text.value(), reply.thinking.value()
    if not reply.text.length + reply.thinking.length:
        # A retry that produced nothing leaves the earlier text where it was.
        content, thinking = reply.previous
    produced = reply.round_output()
    usage = billing.billable_usage(
        reply.usage, produced_output=produced > 0, final=reply.final_usage, text_length=produced
    )
    if not reply.call_open:
        usage = Usage()
    attempt = _attempt(reply, usage, estimated=produced > 0 and not reply.final_usage)
    totals = added(reply.earlier, usage)
    ending: dict[str, Any] = {
        "status": status,
        "content": content,
        "thinking": thinking,
        "thinking_signature": "\n".join(reply.signatures),
        "stop_reason": _stop_reason(reply, status),
        "error_code": error.code if error else "",
        "error_message": error.message if error else "",
        "tools": reply.calls.value() if reply.calls else None,
    }
    pk = reply.message_id
    # What the person saw is saved first, on its own, then the settle (tried again if it fails).
    settled = await tried(
        f"settle reply {pk}",
        SETTLE_RETRY_WAITS,
        services.reply_save_and_settle,
        text=(pk, content, thinking),
        attempt=attempt,
        totals=totals,
        bill=reply.call_open,
        **ending,
    )
    if settled is None:
        # Its text and ending without its bill: the sweep bills it when it can (the tokens of
        # its last call, those it was not billed for).
        ended = await tried(
            f"end reply {pk} unsettled",
            UNSETTLED_RETRY_WAITS,
            services.reply_finish,
            message_id=pk,
            usage=usage,
            unsettled=reply.call_open,
            **ending,
        )
        logger.error(
            "reply %s could not be billed: %s", pk, "marked unsettled" if ended else "left as is"
        )
    reply.usage = totals
    coins = reply.earlier_coins + (settled.coins_charged if settled is not None else 0)
    reply.coins_charged = coins
    if settled is not None and settled.coins_charged:
        reply.balance_after = settled.balance
    return _end_frame(reply, status, error, settled, coins)


def added(earlier: Usage, usage: Usage) -> Usage:
    """Two calls' tokens together (a tool loop's rounds)."""
    return Usage(
        input_tokens=earlier.input_tokens + usage.input_tokens,
        output_tokens=earlier.output_tokens + usage.output_tokens,
        cache_creation_input_tokens=earlier.cache_creation_input_tokens
        + usage.cache_creation_input_tokens,
        cache_read_input_tokens=earlier.cache_read_input_tokens + usage.cache_read_input_tokens,
    )


async def next_round(reply: Reply) -> services.NextRound:
    """Between two rounds of the tool loop: bill the round that ended, save the text and calls,
    hold the next round's coins (services.reply_round_next). The write is not cut short by a
    Stop: it finishes, and the reply's state follows it, before the stop goes on."""
    usage = billing.billable_usage(
        reply.usage, produced_output=True, final=reply.final_usage, text_length=reply.round_output()
    )
    attempt = _attempt(reply, usage, estimated=not reply.final_usage)
    asked = sum(
        len(done.text) + sum(len(o.content) for o in done.outcomes) for done in reply.rounds
    )
    write = database_sync_to_async(services.reply_round_next)(
        attempt=attempt,
        text=(reply.message_id, reply.text.value(), reply.thinking.value()),
        tools=reply.calls.value(),
        input_characters=reply.history_characters + asked,
        max_tokens=reply.max_tokens,
    )
    task = reply.loop.create_task(write)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled() and task.exception() is None:
            reply.round_billed(attempt.usage, task.result())
        raise
    result = task.result()
    reply.round_billed(attempt.usage, result)
    return result


async def tried(
    what: str, waits: tuple[float, ...], write: Callable[..., T], **kwargs: Any
) -> T | None:
    """`write` in the database thread, tried again after each of `waits`; None if it never
    succeeded (each failure logged)."""
    for wait in (*waits, None):
        try:
            return await database_sync_to_async(write)(**kwargs)
        except Exception:
            if wait is None:
                logger.exception("could not %s", what)
                return None
            logger.warning("could not %s; trying again in %s s", what, wait, exc_info=True)
            await asyncio.sleep(wait)
    return None


def _stop_reason(reply: Reply, status: str) -> str:
    return "stopped" if status == Message.Status.STOPPED else reply.stop_reason


def _end_frame(
    reply: Reply,
    status: str,
    error: ProviderError | None,
    settled: billing.Settlement | None,
    coins: int,
) -> str:
    content = reply.text.value()
    # A reply that wrote text before it failed was billed for it: the tabs are told, as for
    # `message_stop` (the page shows the cost and the new balance).
    charge = None
    if content and settled is not None:
        charge = {
            "usage": {
                "input_tokens": reply.usage.input_tokens,
                "output_tokens": reply.usage.output_tokens,
            },
            "provider": reply.resolved.model.provider,
            "byok": reply.resolved.credentials.byok,
            "coins_charged": coins,
            "balance": settled.balance,
        }
    if error is not None:
        return frames.error(
            code=error.code,
            message=error.message,
            retryable=error.retryable,
            message_id=reply.message_id,
            partial_content=content,
            charge=charge,
        )
    if status == Message.Status.INTERRUPTED:
        return frames.error(
            code="interrupted",
            message="The reply was interrupted. You can retry it.",
            retryable=True,
            message_id=reply.message_id,
            partial_content=content,
            charge=charge,
        )
    return frames.message_stop(
        message_id=reply.message_id,
        stop_reason=_stop_reason(reply, status),
        input_tokens=reply.usage.input_tokens,
        output_tokens=reply.usage.output_tokens,
        provider=reply.resolved.model.provider,
        byok=reply.resolved.credentials.byok,
        coins_charged=coins,
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
            round=reply.round,
            duration_ms=_ms(reply.loop.time(), reply.started_at) or 0,
        )
    except Exception:
        logger.exception("could not record attempt %s of reply %s", reply.attempt, reply.message_id)


def _ms(later: float | None, earlier: float) -> int | None:
    return None if later is None else max(0, round((later - earlier) * 1000))
