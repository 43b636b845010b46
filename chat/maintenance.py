"""Each worker's housekeeping: checkpoints of its live replies, and the sweep of replies whose
worker died (ended as interrupted and settled; its sockets' leases renewed meanwhile)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from billing import services as billing
from chat import limits, selectors, services
from chat.frames import Close
from chat.models import Conversation, Message, OpenSocket
from chatsite.accounts import sessions_ended
from providers.catalogue import find_model
from providers.events import Usage

if TYPE_CHECKING:
    from chat.hub import Hub

logger = logging.getLogger(__name__)


async def checkpoint_loop(hub: Hub) -> None:
    """Save every live reply's partial text in one statement per tick, never per delta
    (DESIGN invariant 2); runs while the hub has replies."""
    loop = asyncio.get_running_loop()
    while hub.replies:
        await asyncio.sleep(settings.REPLY_CHECKPOINT_INTERVAL)
        now = loop.time()
        rows = [row for r in hub.replies.values() if (row := r.checkpoint_row(now))]
        if rows:
            try:
                await database_sync_to_async(services.reply_checkpoint)(rows=rows)
            except Exception:
                logger.exception("checkpoint of %d replies failed", len(rows))


# An empty conversation ("New chat" clicked, nothing sent) is removed after this long, by a
# sweep every EMPTY_SWEEP_EVERY seconds on each worker.
EMPTY_KEPT_FOR = dt.timedelta(days=1)
EMPTY_SWEEP_EVERY = 3600.0


def empty_conversations_remove(*, now: dt.datetime | None = None) -> int:
    """Remove conversations that never had a message, made over EMPTY_KEPT_FOR ago and open
    in no tab (a person about to write in one keeps it)."""
    cutoff = (now or timezone.now()) - EMPTY_KEPT_FOR
    open_in_a_tab = OpenSocket.objects.filter(conversation_id=OuterRef("pk"))
    removed, _ = (
        Conversation.objects.filter(
            current_leaf__isnull=True, messages__isnull=True, created_at__lt=cutoff
        )
        .exclude(Exists(open_in_a_tab))
        .delete()
    )
    return removed


def deleted_conversations_remove(*, conversation_id: int | None = None) -> int:
    """Remove the rows of deleted conversations (all, or one) whose reply has ended."""
    deleted = Conversation.objects.filter(deleted_at__isnull=False)
    if conversation_id is not None:
        deleted = deleted.filter(pk=conversation_id)
    streaming = Message.objects.filter(
        conversation_id=OuterRef("pk"), status=Message.Status.STREAMING
    )
    removed, _ = deleted.exclude(Exists(streaming)).delete()
    return removed


async def sweep_loop(hub: Hub) -> None:
    """End replies whose process died, within about REPLY_STALE_AFTER + this interval, renew
    the leases of this worker's sockets, and now and then remove empty conversations."""
    loop = asyncio.get_running_loop()
    next_empty_sweep = loop.time()
    while True:
        await asyncio.sleep(settings.REPLY_SWEEP_INTERVAL)
        if loop.time() >= next_empty_sweep:
            next_empty_sweep = loop.time() + EMPTY_SWEEP_EVERY
            try:
                await database_sync_to_async(empty_conversations_remove)()
            except Exception:
                logger.exception("removing empty conversations failed")
        try:
            swept = await database_sync_to_async(replies_sweep_stale)()
        except Exception:
            logger.exception("sweep of stale replies failed")
            continue
        if swept:
            logger.warning("ended %d interrupted repl(ies): %s", len(swept), swept)
        try:
            # Those whose reply ended on a worker that died, or before its removal ran.
            await database_sync_to_async(deleted_conversations_remove)()
        except Exception:
            logger.exception("removing deleted conversations failed")
        try:
            settled = await database_sync_to_async(replies_settle_unsettled)()
        except Exception:
            logger.exception("settling unsettled replies failed")
        else:
            if settled:
                logger.warning("settled %d repl(ies) left unsettled: %s", len(settled), settled)
        try:
            await database_sync_to_async(_renew_leases)(hub=hub.channel)
        except Exception:
            logger.exception("could not renew this worker's socket leases")
        try:
            await close_ended_sessions(hub)
        except Exception:
            logger.exception("could not check this worker's sockets' sessions")


async def close_ended_sessions(hub: Hub) -> None:
    """Close sockets whose session ended behind their back (deleted or expired without the
    sign-out signal: `clearsessions`, the admin, another device's password reset)."""
    keys = hub.local.session_keys()
    if not keys:
        return
    ended = await database_sync_to_async(sessions_ended)(keys)
    if ended:
        logger.info("closing sockets of %d ended session(s)", len(ended))
        await hub.local.close_sessions(ended, int(Close.SIGNED_OUT))


def _renew_leases(*, hub: str) -> None:
    limits.sockets_renew(hub=hub)
    limits.windows_forget_old()


def swept_latest_exchange(*, conversation_id: int, sweep: bool) -> tuple[Any, Any]:
    """The latest exchange (in the database thread); with `sweep`, a reply whose process died
    is ended first (here at the latest, when someone looks)."""
    asked, reply, _ = swept_exchange_and_tree(conversation_id=conversation_id, sweep=sweep)
    return asked, reply


def swept_exchange_and_tree(
    *, conversation_id: int, sweep: bool
) -> tuple[Any, Any, dict[int, int | None]]:
    """`swept_latest_exchange`, and every message's parent. Only the reply streaming can need
    the sweep (one per conversation), so it is looked for only then."""
    asked, reply, parents = selectors.exchange_and_tree(conversation_id=conversation_id)
    streaming = reply is not None and reply.status == Message.Status.STREAMING
    if sweep and streaming and replies_sweep_stale(conversation_id=conversation_id):
        asked, reply, parents = selectors.exchange_and_tree(conversation_id=conversation_id)
    return asked, reply, parents


INTERRUPTED_MESSAGE = (
    "The reply was interrupted (the server handling it stopped). You can retry it."
)


def replies_sweep_stale(*, conversation_id: int | None = None) -> list[int]:
    """End streaming replies whose process died (stale heartbeat) as interrupted, and settle them.

    They keep their saved partial text and pay only for the output it shows (estimated from its
    length: the provider's count died with the process), never for the input.
    """
    cutoff = timezone.now() - dt.timedelta(seconds=settings.REPLY_STALE_AFTER)
    stale = Message.objects.filter(status=Message.Status.STREAMING, heartbeat_at__lt=cutoff)
    if conversation_id is not None:
        stale = stale.filter(conversation_id=conversation_id)
    swept = []
    for message in stale.select_related("conversation"):
        with transaction.atomic():
            ended = Message.objects.filter(
                pk=message.pk, status=Message.Status.STREAMING, heartbeat_at__lt=cutoff
            ).update(
                status=Message.Status.INTERRUPTED,
                error_code="interrupted",
                error_message=INTERRUPTED_MESSAGE,
                heartbeat_at=None,
                updated_at=timezone.now(),
            )
            if not ended:
                continue
            if message.tools and any(call.get("result") is None for call in message.tools):
                # Its calls still running died with it.
                Message.objects.filter(pk=message.pk).update(tools=interrupted_calls(message.tools))
            _settle_interrupted(message)
        swept.append(message.pk)
    return swept


def interrupted_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A dead reply's tool calls, those still running ended as interrupted."""
    ended = {"is_error": True, "content": "Interrupted: the server running it restarted.",
             "duration_ms": 0}  # fmt: skip
    return [call if call.get("result") is not None else {**call, "result": ended} for call in calls]


def _settle_interrupted(message: Message) -> None:
    model = find_model(message.model)
    if model is None:
        return
    produced = len(message.content) + len(message.thinking)
    if message.tools:
        # Its tool loop's earlier rounds were billed as they ended: only the text after its
        # last call is the last round's (its thinking is not known apart: left out).
        produced = max(0, len(message.content) - max(call["offset"] for call in message.tools))
    usage = billing.billable_usage(
        Usage(), produced_output=produced > 0, final=False, text_length=produced
    )
    _bill_ended(
        message, model, usage, status="interrupted", error_code="interrupted",
        estimated=produced > 0, reference=f"interrupted:{message.pk}",
    )  # fmt: skip


def _bill_ended(
    message: Message,
    model: Any,
    usage: Usage,
    *,
    status: str,
    error_code: str,
    estimated: bool,
    reference: str,
) -> None:
    """Bill a reply that ended without its runner's settle: `usage` captured from its open hold
    (the rest released; `reference` when it has none: an own key's), and its LlmUsage row."""
    hold = billing.open_hold(message_id=message.pk)
    owner_id = message.conversation.owner_id
    settlement = billing.reply_settle(
        user_id=owner_id,
        model=model,
        usage=usage,
        hold=hold,
        reference=hold.reference if hold else reference,
        conversation_id=message.conversation_id,
        message_id=message.pk,
    )
    billing.usage_record(
        usage=usage,
        user_id=owner_id,
        conversation_id=message.conversation_id,
        message_id=message.pk,
        provider=message.provider,
        model=message.model,
        byok=message.byok,
        status=status,
        error_code=error_code,
        usage_estimated=estimated,
        cost_usd=settlement.cost_usd,
        coins_charged=settlement.coins_charged,
    )


def replies_settle_unsettled(*, message_ids: list[int] | None = None) -> list[int]:
    """Bill replies that ended with their text but whose settle failed (chat/settlement.py):
    the capture of the tokens saved on the message and the release of its open hold, and its
    LlmUsage row, in one transaction each; one that fails again stays unsettled. The ids
    settled."""
    pending = Message.objects.filter(unsettled=True).exclude(status=Message.Status.STREAMING)
    if message_ids is not None:
        pending = pending.filter(pk__in=message_ids)
    settled = []
    for message in pending.select_related("conversation"):
        model = find_model(message.model)
        if model is None:
            logger.error("unsettled reply %s: its model %s is unknown", message.pk, message.model)
            continue
        try:
            with transaction.atomic():
                # The claim: another worker's sweep settling it meanwhile finds nothing to do.
                if not Message.objects.filter(pk=message.pk, unsettled=True).update(
                    unsettled=False
                ):
                    continue
                _settle_late(message, model)
        except Exception:
            logger.exception("unsettled reply %s could not be settled yet", message.pk)
            continue
        settled.append(message.pk)
    return settled


def _settle_late(message: Message, model: Any) -> None:
    usage = Usage(input_tokens=message.input_tokens or 0, output_tokens=message.output_tokens or 0)
    _bill_ended(
        message, model, usage, status=services.USAGE_STATUS.get(message.status, "error"),
        error_code=message.error_code, estimated=False, reference=f"unsettled:{message.pk}",
    )  # fmt: skip
