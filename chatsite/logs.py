"""Log lines that join up: every line logged while a reply runs (its task, and the tasks it
starts: the provider call, the title) carries the reply's `message_id` and `conversation_id`,
and its `trace_id` when traces are on (chatsite/telemetry.py), whatever logger wrote it. A log
record factory adds them, so every handler and formatter sees them: the plain one writes them
after the message, the JSON one (LOG_FORMAT=json) as fields.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

# (message id, conversation id, trace id or None) of the reply whose task is running, if one is.
_reply: contextvars.ContextVar[tuple[int, int, str | None] | None] = contextvars.ContextVar(
    "reply", default=None
)
_installed = False


def bind_reply(*, message_id: int, conversation_id: int, trace_id: str | None = None) -> None:
    """From here on in this task (and the tasks it starts), log lines name the reply (and its
    trace, the id a tracing backend shows, when there is one)."""
    _reply.set((message_id, conversation_id, trace_id))


def install() -> None:
    """Add the reply's ids to every log record made from now on (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made = make(*args, **kwargs)
        reply = _reply.get()
        made.message_id, made.conversation_id, made.trace_id = reply if reply else (None,) * 3
        return made

    logging.setLogRecordFactory(record)


class PlainFormatter(logging.Formatter):
    """Time, level, logger and message; then the reply's ids, when the line is about one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        message_id = getattr(record, "message_id", None)
        if message_id is None:
            return line
        conversation_id = getattr(record, "conversation_id", None)
        trace_id = getattr(record, "trace_id", None)
        traced = f" trace={trace_id}" if trace_id else ""
        return f"{line} [message={message_id} conversation={conversation_id}{traced}]"
