"""A worker's graceful shutdown: on SIGTERM (a deploy, a restart) its live replies are ended
before the server stops, so a deploy loses nothing and leaves nothing for the sweep.

Each live reply's upstream stream is closed and the reply is ended as `interrupted`: its text
saved, its bill settled, Retry offered, and the tabs told (an `error` frame with code
`interrupted`). New sends are refused meanwhile ("send it again in a moment"). Then this
process's sockets are closed with Close.RESYNC, so pages reconnect (to another worker, or to
this one once it is back) and catch up; and only then is the server's own SIGTERM handler
(daphne's, uvicorn's) run, which stops accepting and exits. A second SIGTERM, or
SHUTDOWN_GRACE seconds, hands over at once.

The handler is installed when the hub first starts (chat/hub.py), in the main thread where both
servers run their event loop, after the server installed its own: it is chained, not replaced.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from django.conf import settings

from chat.frames import Close
from chatsite import metrics

if TYPE_CHECKING:
    from chat.hub import Hub

logger = logging.getLogger(__name__)

_Handler = Any  # what signal.getsignal returns: a callable, SIG_DFL, SIG_IGN or None

_installed = False
_closing = False
# The loop and hub of the running server (the latest to start, for tests' loops).
_loop: asyncio.AbstractEventLoop | None = None
_hub: Hub | None = None
_tasks: set[asyncio.Task[None]] = set()


def closing() -> bool:
    """Whether this process is shutting down: no new reply starts."""
    return _closing


def install(hub: Hub) -> None:
    """Chain the SIGTERM handler (once per process; later calls only name the running loop)."""
    global _installed, _loop, _hub
    _loop, _hub = asyncio.get_running_loop(), hub
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    _installed = True
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        global _closing
        if _closing or _loop is None or _loop.is_closed():
            _hand_on(previous, signum, frame)  # again, or nothing to end: at once
            return
        _closing = True
        logger.warning("SIGTERM: ending this worker's live replies before it stops")
        _loop.call_soon_threadsafe(_begin, previous, signum)

    signal.signal(signal.SIGTERM, on_term)


def _begin(previous: _Handler, signum: int) -> None:
    assert _loop is not None and _hub is not None
    task = _loop.create_task(end_live_replies(_hub, grace=settings.SHUTDOWN_GRACE))
    _tasks.add(task)

    def hand_on(done: asyncio.Task[None]) -> None:
        _tasks.discard(done)
        if not done.cancelled() and done.exception() is not None:
            logger.error("ending live replies failed", exc_info=done.exception())
        # Its replies and sockets no longer count among the workers' (multiprocess metrics).
        metrics.process_ended(os.getpid())
        _hand_on(previous, signum, None)

    task.add_done_callback(hand_on)


def _hand_on(previous: _Handler, signum: int, frame: FrameType | None) -> None:
    """What SIGTERM did before this module: the server's handler, or the default (exit)."""
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


async def end_live_replies(hub: Hub, *, grace: float) -> None:
    """End every reply this process runs as interrupted (saved, settled, tabs told), waiting up
    to `grace` seconds, then close this process's sockets so their pages reconnect."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    ended = 0
    # Replies that began while the first ones ended are ended too (their start was under way).
    while hub.replies and (left := deadline - loop.time()) > 0:
        replies = list(hub.replies.values())
        for reply in replies:
            reply.interrupt()
        tasks = [task for reply in replies if (task := reply.task) is not None]
        ended += len(replies)
        if tasks:
            await asyncio.wait(tasks, timeout=left)
        else:
            await asyncio.sleep(0.01)
    if hub.replies:
        logger.error("%d repl(ies) could not be ended in %s s", len(hub.replies), grace)
    logger.warning("ended %d live repl(ies); closing this worker's sockets", ended)
    await hub.local.close_all(int(Close.RESYNC))
