"""Invariant 2: database writes per reply do not grow with its token count."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db.backends import utils

from chat import runner
from chat.models import Conversation
from tests.chat.helpers import connect, send, until_end
from tests.fakes.anthropic import paced
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)

_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


@pytest.fixture
def write_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every INSERT/UPDATE/DELETE any thread sends to the database."""
    log: list[str] = []
    real_execute, real_executemany = utils.CursorWrapper.execute, utils.CursorWrapper.executemany

    def execute(self: Any, sql: str, params: Any = None) -> Any:
        if _WRITE.match(sql):
            log.append(sql)
        return real_execute(self, sql, params)

    def executemany(self: Any, sql: str, param_list: Any) -> Any:
        if _WRITE.match(sql):
            log.append(sql)
        return real_executemany(self, sql, param_list)

    monkeypatch.setattr(utils.CursorWrapper, "execute", execute)
    monkeypatch.setattr(utils.CursorWrapper, "executemany", executemany)
    yield log


async def _writes_for(
    alice: Any, server: SSEServer, log: list[str], tokens: int
) -> tuple[int, float]:
    server.enqueue(paced(tokens, duration=1.2))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    tab = await connect(alice, conversation)
    log.clear()
    started = time.monotonic()
    await send(tab, type="send", content="count my writes", client_id="c-1")
    frames = await until_end(tab)
    duration = time.monotonic() - started
    await tab.disconnect()
    await runner.wait_for_replies()
    assert frames[-1]["type"] == "message_stop"
    return len(log), duration


async def test_database_writes_per_reply_do_not_grow_with_token_count(
    alice: Any, anthropic_server: SSEServer, write_log: list[str], settings: Any
) -> None:
    settings.REPLY_CHECKPOINT_INTERVAL = 0.3
    short, short_time = await _writes_for(alice, anthropic_server, write_log, 20)
    long, long_time = await _writes_for(alice, anthropic_server, write_log, 2000)
    # Begin: user message, placeholder, conversation, hold (balance + entry). Settle: the final
    # text, release and capture (one balance update, both entries in one insert), the LlmUsage
    # row. Between them only the timed checkpoints: one per interval of the reply's duration,
    # however many tokens.
    begin, settle, interval = 5, 4, 0.3
    for writes, duration in ((short, short_time), (long, long_time)):
        assert writes <= begin + settle + math.ceil(duration / interval) + 1, (writes, duration)
    # 100 times the tokens in about the same time: no more writes than the time explains.
    assert long - short <= 1 + max(0, math.ceil((long_time - short_time) / interval))
