"""The real ASGI application: session auth and same-origin checks in front of the consumer.

The refused handshakes are in tests/chat/test_hostile_input.py."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.test import Client

from chat.models import Conversation
from chatsite.asgi import application
from tests.chat.helpers import receive, send, until_end
from tests.hostile_cases import HOST, SAME_ORIGIN

pytestmark = pytest.mark.django_db(transaction=True)


def _session_cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def _socket(conversation_id: int, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    path = f"/ws/chat/{conversation_id}/"
    return WebsocketCommunicator(application, path, headers=[(b"host", HOST), *headers])


async def _streams_a_demo_reply(conversation_id: int, cookie: bytes) -> None:
    tab = _socket(conversation_id, [(b"origin", SAME_ORIGIN), (b"cookie", cookie)])
    assert (await tab.connect())[0]
    await send(tab, type="send", content="hello")
    assert (await receive(tab))["type"] == "user_message"
    assert (await until_end(tab))[-1]["type"] == "message_stop"
    await tab.disconnect()


async def test_a_logged_in_same_origin_socket_streams_a_demo_reply(alice: Any) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model="demo")
    cookie = await database_sync_to_async(_session_cookie)(alice)
    await _streams_a_demo_reply(conversation.pk, cookie)


async def _handshake_close_code(conversation_id: int, cookie: bytes) -> int | None:
    tab = _socket(conversation_id, [(b"origin", SAME_ORIGIN), (b"cookie", cookie)])
    connected, _ = await tab.connect()
    assert connected  # refusals accept, then close with the app's code
    closed = await tab.receive_output(timeout=5)
    await tab.disconnect()
    return closed.get("code") if closed["type"] == "websocket.close" else None


async def test_a_session_from_before_a_password_change_is_refused(alice: Any) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model="demo")
    cookie = await database_sync_to_async(_session_cookie)(alice)

    def new_password() -> None:
        alice.set_password("a-brand-new-pass-phrase")
        alice.save()

    await database_sync_to_async(new_password)()
    assert await _handshake_close_code(conversation.pk, cookie) == 4401


async def test_a_signed_out_or_unknown_session_is_refused(alice: Any) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model="demo")
    cookie = await database_sync_to_async(_session_cookie)(alice)
    await Session.objects.all().adelete()  # signed out everywhere
    assert await _handshake_close_code(conversation.pk, cookie) == 4401
    assert await _handshake_close_code(conversation.pk, b"sessionid=made-up") == 4401


async def test_a_disabled_accounts_session_is_refused(alice: Any) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model="demo")
    cookie = await database_sync_to_async(_session_cookie)(alice)
    alice.is_active = False
    await alice.asave(update_fields=["is_active"])
    assert await _handshake_close_code(conversation.pk, cookie) == 4401


async def test_a_session_from_before_a_secret_key_rotation_still_opens_and_sends(
    alice: Any, settings: Any
) -> None:
    """As Django's `get_user`: a session hash made with a key now in SECRET_KEY_FALLBACKS
    still signs the person in (the next page rotates it)."""
    conversation = await Conversation.objects.acreate(owner=alice, model="demo")
    cookie = await database_sync_to_async(_session_cookie)(alice)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-rotated-secret-key-for-this-test-0123456789-abcdefghij"
    await _streams_a_demo_reply(conversation.pk, cookie)


@pytest.mark.optimisation
async def test_a_socket_makes_two_trips_to_the_database_thread_from_open_to_close(
    alice: Any, database_trips: list[str]
) -> None:
    """Through the whole stack, from the cookie: its session and person, its row and its
    catch-up in one; its row's removal in the other. Channels' session and auth middleware
    would add two before the consumer runs, its disconnect handler one more (closing old
    connections that the second closed)."""
    conversation = await Conversation.objects.acreate(owner=alice, model="demo")
    cookie = await database_sync_to_async(_session_cookie)(alice)
    database_trips.clear()
    tab = _socket(conversation.pk, [(b"origin", SAME_ORIGIN), (b"cookie", cookie)])
    assert (await tab.connect())[0]
    await tab.disconnect()
    assert database_trips == ["_open", "socket_close"], database_trips


@pytest.mark.parametrize(
    "path", ["/ws/chat/abc/", "/ws/chat/-1/", "/ws/chat/1", "/ws/elsewhere/", "/ws/chat/1/x/"]
)
async def test_a_socket_to_a_path_that_is_no_chat_is_refused_cleanly(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused as a missing conversation (4404), with no error logged (was an unhandled "No
    route found" and a traceback)."""
    tab = WebsocketCommunicator(
        application, path, headers=[(b"host", HOST), (b"origin", SAME_ORIGIN)]
    )
    connected, _ = await tab.connect()
    assert connected  # refusals accept, then close with the app's code
    assert await tab.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}
    await tab.disconnect()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
