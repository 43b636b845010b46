"""No socket is left open and deaf: every frame the server builds can be sent (nothing a client
sent is echoed unencodable), and a socket whose sending fails is closed, so the page reconnects,
instead of swallowing every later frame."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat import frames, runner
from chat.hub import get_hub
from chat.models import Conversation
from tests.chat.helpers import connect, send

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conversation(alice: Any) -> Conversation:
    return Conversation.objects.create(owner=alice, model="demo")


def _sendable(output: dict[str, Any]) -> dict[str, Any]:
    """An answer as a real server would send it: UTF-8 text (a lone surrogate cannot be)."""
    assert output["type"] == "websocket.send", output
    output["text"].encode("utf-8")
    return cast(dict[str, Any], json.loads(output["text"]))


async def test_a_field_name_that_is_not_text_gets_an_answer_that_can_be_sent(
    alice: Any, conversation: Conversation
) -> None:
    tab = await connect(alice, conversation)
    await tab.send_to(text_data='{"type": "stop", "\\ud800": 1}')
    error = _sendable(await tab.receive_output(timeout=3))
    assert error["code"] == "invalid_request" and "\ud800" not in error["message"]
    await send(tab, type="send", content="still here", client_id="after-1")
    assert _sendable(await tab.receive_output(timeout=3))["type"] == "user_message"
    await tab.disconnect()
    await runner.wait_for_replies()


def test_every_frame_the_server_builds_is_sendable_whatever_it_holds() -> None:
    frame = {"type": "error", "message": "\ud800 and \udfff", "\ud83d": 2**70}
    text = frames.dump(frame)
    text.encode("utf-8")
    assert json.loads(text) == frame


async def test_a_socket_whose_sending_fails_is_closed_so_the_page_reconnects(
    alice: Any, conversation: Conversation
) -> None:
    tab = await connect(alice, conversation)
    hub = get_hub()
    for _ in range(500):
        if hub.local.by_conversation.get(conversation.pk):
            break
        await asyncio.sleep(0.01)
    (consumer,) = hub.local.by_conversation[conversation.pk]
    consumer = cast(Any, consumer)
    real_base_send = consumer.base_send

    async def failing_once(message: dict[str, Any]) -> None:
        if message.get("text") == "poison":
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        await real_base_send(message)

    consumer.base_send = failing_once
    consumer.push("poison")
    closed = await tab.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": frames.Close.RESYNC}
    await tab.wait()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    text=st.text(max_size=60)
    | st.dictionaries(st.text(max_size=8), st.text(max_size=8)).map(
        lambda d: json.dumps({"type": "stop", **d})
    )
)
async def test_any_text_frame_is_answered_or_closed_and_later_sends_are_answered(
    alice: Any, conversation: Conversation, text: str
) -> None:
    tab = await connect(alice, conversation)
    await tab.send_input({"type": "websocket.receive", "text": text})  # empty text too
    try:
        output = await tab.receive_output(timeout=0.3)
    except TimeoutError:
        output = None  # a valid stop with nothing running has nothing to answer
    if output is not None and output["type"] == "websocket.close":
        await tab.wait()
        return
    if output is not None:
        _sendable(output)
    await send(tab, type="send", content="answered?", client_id="later-1")
    while _sendable(await tab.receive_output(timeout=3))["type"] != "user_message":
        pass
    await send(tab, type="stop")
    await tab.disconnect()
    await runner.wait_for_replies()
