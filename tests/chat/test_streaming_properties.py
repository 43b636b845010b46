"""Property: streaming delivers incremental content, exactly, whatever the split."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat import runner
from chat.models import Conversation, Message
from tests.chat.helpers import ClientView, connect, send, until_end
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer
from tests.strategies import delta_splits, emoji_heavy_text

pytestmark = pytest.mark.django_db(transaction=True)


async def _stream_and_assemble(
    alice: Any, server: SSEServer, chunks: list[str], delay: float
) -> None:
    server.enqueue(text_reply(chunks, delay=delay))
    conversation = await database_sync_to_async(Conversation.objects.create)(
        owner=alice, model="claude-sonnet-5-5"
    )
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="stream this")
    view = ClientView()
    frames = await until_end(tab)
    for frame in frames:
        view.apply(frame)
    await tab.disconnect()
    await runner.wait_for_replies()
    message_id = frames[-1]["message_id"]
    expected = "".join(chunks)
    assert view.gaps == 0
    assert view.text[message_id] == expected
    saved = await Message.objects.aget(pk=message_id)
    assert saved.content == expected


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(chunks=delta_splits(), delay=st.sampled_from([0.0, 0.0, 0.002]))
async def test_streaming_delivers_incremental_content(
    alice: Any, anthropic_server: SSEServer, chunks: list[str], delay: float
) -> None:
    await _stream_and_assemble(alice, anthropic_server, chunks, delay)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(chunks=delta_splits(emoji_heavy_text))
async def test_streaming_keeps_emoji_and_combining_marks_whole(
    alice: Any, anthropic_server: SSEServer, chunks: list[str]
) -> None:
    await _stream_and_assemble(alice, anthropic_server, chunks, 0.0)
