"""What a worker's replies streamed, batched for the other workers' hubs that watch them: one
`relay.frames` message per watching hub every REPLY_REMOTE_INTERVAL (chat/relay.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from chat.hub import LiveReply
    from chat.relay import Relay

logger = logging.getLogger(__name__)


class Outbox:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        # Replies with text not yet taken, and what was taken (in order, by watching hub) and
        # not yet sent. One task sends it all, tick by tick.
        self._pending: set[LiveReply] = set()
        self._outbox: dict[str, list[dict[str, Any]]] = {}
        self._sender: asyncio.Task[None] | None = None

    def pending(self, reply: LiveReply) -> None:
        """The reply streamed text its remote watchers have not had: taken at the next tick."""
        self._pending.add(reply)
        self._start_sender()

    def queue(
        self, reply: LiveReply, texts: list[str], *, ended: bool = False, to: str | None = None
    ) -> None:
        """Queue frames for the other workers' hubs that watch this reply (or for one of them),
        after whatever was queued for them before; the next tick sends them."""
        entry = {"conversation": reply.conversation_id, "frames": texts, "ended": ended}
        for hub in (to,) if to is not None else tuple(reply.remote_watchers):
            self.add(hub, entry)

    def add(self, hub: str, entry: dict[str, Any]) -> None:
        self._outbox.setdefault(hub, []).append(entry)
        self._start_sender()

    def _start_sender(self) -> None:
        if self._sender is None:
            self._sender = self.relay.hub.spawn(self._send_loop())

    async def _send_loop(self) -> None:
        """Every REPLY_REMOTE_INTERVAL while there is text to relay: take every pending reply's
        new text, then send each watching hub one message with all of it. Only this task sends,
        one hub after another, so a hub gets every reply's frames in the order they were taken."""
        try:
            while self._pending or self._outbox:
                await asyncio.sleep(settings.REPLY_REMOTE_INTERVAL)
                pending, self._pending = self._pending, set()
                for reply in pending:
                    texts = reply.take_remote_frames()
                    if texts:
                        self.queue(reply, texts)
                outbox, self._outbox = self._outbox, {}
                for hub, entries in outbox.items():
                    await self._send_entries(hub, entries)
        finally:
            self._sender = None

    async def _send_entries(self, hub: str, entries: list[dict[str, Any]]) -> None:
        message = {"type": "relay.frames", "owner": self.relay.channel, "entries": entries}
        try:
            if await self.relay.send(hub, message):
                return
        except Exception:
            # The layer is down: that hub's tabs find the gap when frames come again and ask
            # for a fresh snapshot (a reconnect), so it stays a watcher.
            logger.exception("could not relay %d replies' frames to %s", len(entries), hub)
            return
        # Its channel is full (that worker is gone, or stuck): stop sending it these replies.
        for entry in entries:
            reply = self.relay.hub.replies.get(entry["conversation"])
            if reply is not None:
                reply.remote_watchers.discard(hub)
