"""Each worker's housekeeping: checkpoints of its live replies, and the sweep of replies whose
worker died (with its sockets' leases renewed)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings

from chat import limits, selectors, services
from chat.models import Message

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


async def sweep_loop(hub: Hub) -> None:
    """End replies whose process died, within about REPLY_STALE_AFTER + this interval, and
    renew the leases of this worker's sockets."""
    while True:
        await asyncio.sleep(settings.REPLY_SWEEP_INTERVAL)
        try:
            swept = await database_sync_to_async(services.replies_sweep_stale)()
        except Exception:
            logger.exception("sweep of stale replies failed")
            continue
        if swept:
            logger.warning("ended %d interrupted repl(ies): %s", len(swept), swept)
        try:
            await database_sync_to_async(_renew_leases)(hub=hub.channel)
        except Exception:
            logger.exception("could not renew this worker's socket leases")


def _renew_leases(*, hub: str) -> None:
    limits.sockets_renew(hub=hub)
    limits.windows_forget_old()


def swept_latest_exchange(*, conversation_id: int, sweep: bool) -> tuple[Any, Any]:
    """The latest exchange (in the database thread); with `sweep`, a reply whose process died
    is ended first (here at the latest, when someone looks). Only the latest reply can be
    streaming (one per conversation, and none starts after it while it streams), so the sweep
    is looked for only when it is."""
    asked, reply = selectors.latest_exchange(conversation_id=conversation_id)
    streaming = reply is not None and reply.status == Message.Status.STREAMING
    if sweep and streaming and services.replies_sweep_stale(conversation_id=conversation_id):
        asked, reply = selectors.latest_exchange(conversation_id=conversation_id)
    return asked, reply
