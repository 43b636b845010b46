"""A tab whose connection is congested (a bad network, a tab that stopped reading) holds up
no one: not the reply, not the person's other tabs, not the settle. With uvicorn a send waits
while the client's connection is congested; here a socket's sends wait until released."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from chat import consumers
from chat.frames import Close
from chat.hub import get_hub
from chat.models import Conversation, Message
from tests.chat.helpers import ClientView, connect, send, until_end
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)


async def _congested_tab(alice: Any, conversation: Conversation) -> tuple[Any, Any, asyncio.Event]:
    """A connected tab whose outgoing messages wait until the returned event is set."""
    tab = await connect(alice, conversation)
    hub = get_hub()
    for _ in range(500):  # accepted first, then subscribed (through Redis, a round trip later)
        if hub.local.by_conversation.get(conversation.pk):
            break
        await asyncio.sleep(0.01)
    (consumer,) = hub.local.by_conversation[conversation.pk]
    consumer = cast(Any, consumer)
    released = asyncio.Event()
    real_base_send = consumer.base_send

    async def congested(message: dict[str, Any]) -> None:
        await released.wait()
        await real_base_send(message)

    consumer.base_send = congested
    return tab, consumer, released


async def test_a_congested_tab_holds_up_neither_the_reply_nor_the_other_tabs(
    alice: Any, anthropic_server: SSEServer
) -> None:
    chunks = [f"w{i} " for i in range(40)]
    anthropic_server.enqueue(text_reply(chunks, delay=0.005))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    stuck, _, released = await _congested_tab(alice, conversation)
    reading = await connect(alice, conversation)
    await send(reading, type="send", content="go on without it")
    frames = await until_end(reading)
    view = ClientView()
    for frame in frames:
        view.apply(frame)
    message_id = frames[-1]["message_id"]
    assert frames[-1]["type"] == "message_stop"
    assert view.text[message_id] == "".join(chunks)
    # Settled while the congested tab still waits.
    assert (await Message.objects.aget(pk=message_id)).status == "complete"
    assert not released.is_set()
    # Once its connection clears, it gets every frame, in order.
    released.set()
    late = ClientView()
    for frame in await until_end(stuck):
        late.apply(frame)
    assert late.gaps == 0
    assert late.text[message_id] == "".join(chunks)
    await reading.disconnect()
    await stuck.disconnect()


async def test_a_tab_too_far_behind_is_closed_to_resync_and_keeps_nothing_waiting(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "SOCKET_BACKLOG_LIMIT", 1000)
    chunks = [f"long{i} " for i in range(200)]
    anthropic_server.enqueue(text_reply(chunks, delay=0.002))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    stuck, consumer, released = await _congested_tab(alice, conversation)
    reading = await connect(alice, conversation)
    await send(reading, type="send", content="more than it can take")
    assert (await until_end(reading))[-1]["type"] == "message_stop"
    # What waited was dropped: only the close is left (and the one send under way).
    assert consumer._outbox is not None
    assert [m["type"] for m in consumer._outbox] == ["websocket.close"]
    assert consumer._backlog <= 1000
    released.set()
    while (output := await stuck.receive_output(5))["type"] != "websocket.close":
        assert output["type"] == "websocket.send"
    assert output["code"] == Close.RESYNC
    await reading.disconnect()
