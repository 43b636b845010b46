"""Log lines that join up: every line logged while a reply runs names its message and
conversation (whatever logger wrote it), one line tells how each reply ended, and LOG_FORMAT=json
writes them as fields a log shipper reads."""

from __future__ import annotations

import json
import logging
from typing import Any, cast

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from chat.models import Conversation
from tests.chat.helpers import connect, send, until_end
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_reply_s_log_lines_name_it(
    alice: Any, anthropic_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    anthropic_server.enqueue(text_reply(["Hello", " there."], input_tokens=12))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Hi")
    stop = (await until_end(tab))[-1]
    ended = [r for r in caplog.records if r.getMessage().startswith("reply ended")]
    assert len(ended) == 1
    record = ended[0]
    assert (record.message_id, record.conversation_id) == (  # type: ignore[attr-defined]
        stop["message_id"],
        conversation.pk,
    )
    assert record.getMessage().startswith(
        "reply ended complete: model claude-sonnet-5-5, 12 tokens in, 2 out"
    )
    # Lines about nothing in particular carry no ids.
    logging.getLogger("elsewhere").warning("unrelated")
    assert caplog.records[-1].message_id is None  # type: ignore[attr-defined]
    await tab.disconnect()


def _formatted(kind: str, record: logging.LogRecord) -> str:
    """The record as the site's formatter `kind` writes it (built from settings.LOGGING)."""
    formatters = cast(dict[str, dict[str, Any]], settings.LOGGING["formatters"])
    options = dict(formatters[kind])
    factory = import_string(options.pop("()"))
    if "format" in options:  # dictConfig's name for the format string
        options["fmt"] = options.pop("format")
    return str(factory(**options).format(record))


def test_the_plain_and_json_formats_carry_the_ids() -> None:
    record = logging.makeLogRecord(
        {"name": "chat.runner", "levelname": "INFO", "levelno": 20, "msg": "reply ended complete",
         "message_id": 41, "conversation_id": 7}
    )  # fmt: skip
    assert (
        _formatted("plain", record)
        .rstrip()
        .endswith("chat.runner reply ended complete [message=41 conversation=7]")
    )
    line = json.loads(_formatted("json", record))
    assert line["message"] == "reply ended complete" and line["logger"] == "chat.runner"
    assert (line["message_id"], line["conversation_id"], line["level"]) == (41, 7, "INFO")
