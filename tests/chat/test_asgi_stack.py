"""The real ASGI application: session auth and same-origin checks in front of the consumer.

The refused handshakes are in tests/chat/test_hostile_input.py."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from chat.models import Conversation
from chatsite.asgi import application
from tests.chat.helpers import receive, send, until_end

pytestmark = pytest.mark.django_db(transaction=True)


def _session_cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def _socket(conversation_id: int, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/chat/{conversation_id}/", headers=headers)


async def test_a_logged_in_same_origin_socket_streams_a_demo_reply(alice: Any) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model="demo")
    cookie = await database_sync_to_async(_session_cookie)(alice)
    tab = _socket(conversation.pk, [(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie)])
    assert (await tab.connect())[0]
    await send(tab, type="send", content="hello")
    assert (await receive(tab))["type"] == "user_message"
    assert (await until_end(tab))[-1]["type"] == "message_stop"
    await tab.disconnect()
