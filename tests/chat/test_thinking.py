"""Thinking: streamed into its own section, saved with the message; signatures never leave."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import runner
from chat.models import Conversation, Message
from tests.chat.helpers import ClientView, connect, send, until_end
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)


async def test_thinking_streams_before_the_answer_and_is_saved_with_its_signature(
    alice: Any, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["The answer."], thinking=["Let me ", "think."]))
    conversation = await database_sync_to_async(Conversation.objects.create)(
        owner=alice, model="claude-sonnet-5-5"
    )
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Why?")
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()

    view = ClientView()
    for frame in frames:
        view.apply(frame)
    message_id = frames[-1]["message_id"]
    assert view.thinking[message_id] == "Let me think."
    assert view.text[message_id] == "The answer."
    kinds = [f["type"] for f in frames if f["type"] in ("thinking_delta", "text_delta")]
    assert kinds.index("thinking_delta") < kinds.index("text_delta")
    # The signature is kept server-side and appears in no frame.
    assert not any("c2ln" in json.dumps(frame) for frame in frames)
    saved = await Message.objects.aget(pk=message_id)
    assert (saved.thinking, saved.thinking_signature) == ("Let me think.", "c2ln")
    # The request asked the model to think (adaptive: it decides how much).
    assert anthropic_server.requests[0].body["thinking"]["type"] == "adaptive"


def test_the_page_shows_saved_thinking_collapsed_and_never_the_signature(
    client: Client, alice: Any
) -> None:
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    Message.objects.create(conversation=conversation, role="user", content="Why?")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="Because.",
        thinking="Weighing it up.",
        thinking_signature="SECRET-SIGNATURE",
    )
    client.force_login(alice)
    page = client.get(f"/chat/{conversation.pk}/").content.decode()
    assert '<details class="thinking">' in page and "Weighing it up." in page
    assert "SECRET-SIGNATURE" not in page
