"""A socket that floods its worker with frames is closed (Close.TOO_MANY_FRAMES): every frame,
valid or not, counts against its budget (SOCKET_FRAMES_PER_SECOND in bursts of up to
SOCKET_FRAME_BURST), far above what a page sends and far below what slows a worker."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from chat.frames import Close
from chat.models import Conversation, Message
from tests.chat.helpers import connect, receive, send, until_end

pytestmark = pytest.mark.django_db(transaction=True)


async def _answers_until_closed(tab: WebsocketCommunicator) -> tuple[list[dict[str, Any]], int]:
    answers: list[dict[str, Any]] = []
    while True:
        output = await tab.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return answers, int(output["code"])
        answers.append(json.loads(output["text"]))


@pytest.mark.parametrize(
    "frame", ['{"type": "nonsense"}', '{"type": "stop"}', "not json", '{"type": "send"}']
)
async def test_a_flood_of_frames_closes_the_socket(alice: Any, settings: Any, frame: str) -> None:
    settings.SOCKET_FRAME_BURST = 20
    conversation = await Conversation.objects.acreate(owner=alice, model="demo")
    tab = await connect(alice, conversation)
    for _ in range(2_000):
        await tab.send_input({"type": "websocket.receive", "text": frame})
    answers, code = await _answers_until_closed(tab)
    assert code == Close.TOO_MANY_FRAMES
    assert answers[-1]["code"] == "rate_limited" and "more messages" in answers[-1]["message"]
    # Up to the burst was handled (stops answer nothing); nothing after it was.
    assert len(answers) - 1 <= 20


async def test_a_page_paced_socket_is_never_closed(alice: Any, settings: Any) -> None:
    """A burst up to the budget, then frames at the allowed pace, are all answered."""
    settings.SOCKET_FRAME_BURST, settings.SOCKET_FRAMES_PER_SECOND = 5, 20.0
    conversation = await Conversation.objects.acreate(owner=alice, model="demo")
    tab = await connect(alice, conversation)
    for _ in range(5):
        await send(tab, type="nonsense")
        assert (await receive(tab))["code"] == "invalid_request"
    for _ in range(10):
        await asyncio.sleep(0.06)  # a little slower than 20 a second
        await send(tab, type="nonsense")
        assert (await receive(tab))["code"] == "invalid_request"
    await send(tab, type="send", content="Still here")
    assert (await until_end(tab))[-1]["type"] == "message_stop"
    await tab.disconnect()


async def test_a_flood_leaves_another_persons_reply_whole(
    alice: Any, bob: Any, settings: Any
) -> None:
    settings.SOCKET_FRAME_BURST = 20
    bobs = await Conversation.objects.acreate(owner=bob, model="demo")
    reader = await connect(bob, bobs)
    flooder = await connect(alice, await Conversation.objects.acreate(owner=alice, model="demo"))
    await send(reader, type="send", content="Tell me something")
    for _ in range(5_000):
        await flooder.send_input({"type": "websocket.receive", "text": '{"type": "stop"}'})
    _, code = await _answers_until_closed(flooder)
    assert code == Close.TOO_MANY_FRAMES
    end = (await until_end(reader))[-1]
    assert end["type"] == "message_stop"
    reply = await Message.objects.aget(pk=end["message_id"])
    assert reply.status == "complete" and reply.content
    await reader.disconnect()
