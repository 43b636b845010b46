"""Refusals name the send they refuse (its client_id), so the page matches them by it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from chat import frames, runner
from chat.models import Conversation, Message
from tests.chat.helpers import connect, receive, send, until_end

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conversation(alice: Any) -> Conversation:
    return Conversation.objects.create(owner=alice, model="demo")


async def test_a_send_refused_while_a_reply_streams_carries_its_client_id(
    alice: Any, conversation: Conversation, settings: Any
) -> None:
    settings.DEMO_TOKENS_PER_SECOND = 20.0  # slow enough to still stream at the second send
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="first", client_id="first-1")
    assert (await receive(tab))["type"] == "user_message"
    await send(tab, type="send", content="second", client_id="second-2")
    while (frame := await receive(tab))["type"] != "error":
        pass
    assert (frame["code"], frame["client_id"]) == ("invalid_request", "second-2")
    assert "message_id" not in frame
    await send(tab, type="stop")
    await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    assert not await Message.objects.filter(content="second").aexists()


@pytest.mark.parametrize(
    ("frame", "client_id"),
    [
        ({"type": "send", "content": "x" * 40_000, "client_id": "long-1"}, "long-1"),
        ({"type": "send", "content": "hi", "client_id": "odd-1", "colour": "red"}, "odd-1"),
        ({"type": "send", "content": "", "client_id": "empty-1"}, "empty-1"),
        ({"type": "send", "content": "x" * 40_000, "client_id": "not valid!"}, None),
        ({"type": "stop", "client_id": "stop-1"}, None),
    ],
)
async def test_an_invalid_send_names_itself_when_its_client_id_is_valid(
    alice: Any, conversation: Conversation, frame: dict[str, Any], client_id: str | None
) -> None:
    tab = await connect(alice, conversation)
    await send(tab, **frame)
    error = await receive(tab)
    assert error["type"] == "error" and error["code"] == "invalid_request"
    assert error.get("client_id") == client_id
    await tab.disconnect()


def test_the_page_gets_the_close_codes_and_retry_statuses_from_the_server(
    alice: Any, conversation: Conversation
) -> None:
    client = Client()
    client.force_login(alice)
    page = client.get(f"/chat/{conversation.pk}/")
    config = json.loads(page.context["chat_config"])
    assert config["close"] == {code.name.lower(): code.value for code in frames.Close}
    assert config["retry_statuses"] == list(frames.RETRY_STATUSES)
    assert config["providers"]["openrouter"] == "OpenRouter"
    assert 'data-config="{&quot;close&quot;' in page.content.decode()
