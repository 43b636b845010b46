"""When a reply's new text goes out: to this process's sockets as soon as the provider's stream
pauses, and to other workers at the relay's next tick (chat/relay_outbox.py).

A read of the provider's stream can bring several events; they go out as one frame at the loop's
next turn, so frames merge exactly when the process is busy and none waits for a timer. With
REPLY_FRAME_INTERVAL above 0, a reply sends at most one frame per that interval, for less CPU
per event at up to that much more latency. Frames for this process's sockets are queued
synchronously, so they keep their order with no lock.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from django.conf import settings

from chat import frames

if TYPE_CHECKING:
    from chat.runner import Reply


class Delivery:
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self._loop = reply.loop
        self._interval = settings.REPLY_FRAME_INTERVAL
        self._timer: asyncio.Handle | None = None
        self._last = -math.inf

    def text_added(self, now: float) -> None:
        """The reply's text grew: a frame is due at the loop's next turn (or once the interval
        since the last one has passed), and the remote watchers' share at the next tick."""
        if self._timer is None:
            wait = self._last + self._interval - now
            if wait <= 0:
                self._timer = self._loop.call_soon(self._on_timer)
            else:
                self._timer = self._loop.call_later(wait, self._on_timer)
        reply = self.reply
        if reply.remote_watchers:
            reply.hub.relay_pending(reply)

    def _on_timer(self) -> None:
        self._timer = None
        self._last = self._loop.time()
        self.flush()

    def flush(self) -> None:
        """Send this process's sockets what they have not had yet."""
        reply = self.reply
        taken = (reply.thinking.take_local(), reply.text.take_local())
        for text in frames.deltas(reply.message_id, *taken):
            reply.hub.deliver(reply.conversation_id, text)

    def finish(self) -> None:
        """The reply ended: what is left goes out now, and no frame is due any more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()
