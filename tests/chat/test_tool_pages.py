"""A reply's tool calls on the page, in exports and after a reload; the person's switch for
tools in a conversation."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat.models import Conversation, Message
from tests.chat.helpers import connect, receive
from tools import offer
from tools.models import BuiltinTool

pytestmark = pytest.mark.django_db(transaction=True)

CALLS = [
    {
        "call_id": "toolu_1",
        "name": "calculator",
        "input": {"expression": "6 * 7"},
        "offset": 12,
        "round": 1,
        "result": {"is_error": False, "content": "42", "duration_ms": 3},
    },
    {
        "call_id": "toolu_2",
        "name": "current_time",
        "input": {"time_zone": "Mars/Olympus"},
        "offset": 12,
        "round": 1,
        "result": {"is_error": True, "content": "Unknown time zone.", "duration_ms": 1200},
    },
]


@pytest.fixture
def reply(alice: Any) -> Message:
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    asked = Message.objects.create(conversation=conversation, role="user", content="Sum?")
    return Message.objects.create(
        conversation=conversation,
        parent=asked,
        role="assistant",
        model="claude-sonnet-5-5",
        content="Let me add. **It is 42.**",
        tools=CALLS,
        stop_reason="end_turn",
    )


def test_a_reply_shows_its_calls_where_it_asked_for_them(
    client: Client, alice: Any, reply: Message
) -> None:
    client.force_login(alice)
    page = client.get(f"/chat/{reply.conversation_id}/").content.decode()
    body = page[page.index(f'id="m-{reply.pk}"') :]
    body = body[: body.index("</li>")]
    # The text before the calls, the calls (collapsed), the text after, in that order.
    before, calls, after = (
        body.index("Let me add."),
        body.index('class="tool-calls"'),
        body.index("<strong>It is 42.</strong>"),
    )
    assert before < calls < after
    assert body.count('<details class="tool-call"') == 2
    assert 'data-state="done"' in body and 'data-state="error"' in body
    assert "&quot;expression&quot;: &quot;6 * 7&quot;" in body  # the input, as JSON
    assert "failed · 1.2 s" in body and "Unknown time zone." in body
    # The script gets the same calls (a repaint keeps them).
    tools = body.split('data-tools="', 1)[1].split('"', 1)[0]
    assert json.loads(html.unescape(tools)) == CALLS


def test_a_reply_that_reached_the_round_limit_says_so(
    client: Client, alice: Any, reply: Message, settings: Any
) -> None:
    settings.TOOL_ROUNDS_MAX = 3
    Message.objects.filter(pk=reply.pk).update(stop_reason="tool_limit")
    client.force_login(alice)
    page = client.get(f"/chat/{reply.conversation_id}/").content.decode()
    assert "more tools after 3 rounds" in page


def test_exports_carry_the_calls(client: Client, alice: Any, reply: Message) -> None:
    client.force_login(alice)
    markdown = client.get(f"/chat/{reply.conversation_id}/export.md").content.decode()
    assert '> **Tool `calculator`** `{"expression": "6 * 7"}`\n> Result: 42' in markdown
    assert "> Error: Unknown time zone." in markdown
    assert markdown.index("Let me add.") < markdown.index("Tool `calculator`")
    assert markdown.index("Tool `current_time`") < markdown.index("**It is 42.**")
    exported = json.loads(client.get(f"/chat/{reply.conversation_id}/export.json").content)
    assert exported["messages"][1]["tools"] == CALLS


def test_the_switch_shows_the_tools_that_are_on(client: Client, alice: Any, reply: Message) -> None:
    client.force_login(alice)
    offer.forget_setup()
    page = client.get(f"/chat/{reply.conversation_id}/").content.decode()
    assert 'id="tools-enabled"' in page and " checked" in page.split('id="tools-enabled"')[1][:300]
    assert "calculator, current time" in page
    BuiltinTool.objects.update(enabled=False)
    offer.forget_setup()
    page = client.get(f"/chat/{reply.conversation_id}/").content.decode()
    assert 'id="tools-enabled"' not in page  # nothing to switch


async def test_switching_tools_off_is_kept_and_every_tab_follows(
    alice: Any, bob: Any, reply: Message
) -> None:
    conversation = await Conversation.objects.aget(pk=reply.conversation_id)
    tab = await connect(alice, conversation)
    client = Client()
    await database_sync_to_async(client.force_login)(alice)
    response = await database_sync_to_async(client.post)(
        f"/chat/{conversation.pk}/tools/", {"enabled": "false"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200 and response.json() == {"enabled": False}
    frame = await receive(tab)
    while frame["type"] != "conversation_tools":
        frame = await receive(tab)
    assert frame == {
        "type": "conversation_tools",
        "conversation_id": conversation.pk,
        "enabled": False,
    }
    assert not (await Conversation.objects.aget(pk=conversation.pk)).tools_enabled
    # A plain form (no script): back to the conversation, switched on again.
    response = await database_sync_to_async(client.post)(
        f"/chat/{conversation.pk}/tools/", {"enabled": ["true", "false"]}
    )
    assert response.status_code == 302
    assert (await Conversation.objects.aget(pk=conversation.pk)).tools_enabled
    # Another person's conversation is a missing one.
    intruder = Client()
    await database_sync_to_async(intruder.force_login)(bob)
    response = await database_sync_to_async(intruder.post)(
        f"/chat/{conversation.pk}/tools/", {"enabled": "false"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 404
    assert (await Conversation.objects.aget(pk=conversation.pk)).tools_enabled
    await tab.disconnect()
