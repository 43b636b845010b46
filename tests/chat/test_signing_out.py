"""Signing out, a new password or a disabled account closes the person's open sockets, and
every paid action re-checks the session it was opened with."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import logout
from django.test import RequestFactory

from billing.models import LedgerEntry, LlmUsage
from chat.models import Conversation, Message
from tests.chat.helpers import connect, receive, send, signed_in_session
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)


async def _closed_with(tab: WebsocketCommunicator) -> int:
    """The close code of a socket the server closes (frames sent before it are skipped)."""
    while True:
        output = await tab.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            return int(output["code"])


async def _still_open(tab: WebsocketCommunicator) -> bool:
    await send(tab, type="send", content="   ")  # invalid, harmless: answered, nothing done
    return (await receive(tab))["code"] == "invalid_request"


@pytest.fixture
def conversation(alice: Any) -> Conversation:
    return Conversation.objects.create(owner=alice, model="demo")


async def test_logging_out_closes_that_sessions_sockets_only(
    alice: Any, conversation: Conversation
) -> None:
    this_session = await database_sync_to_async(signed_in_session)(alice)
    tab = await connect(alice, conversation, this_session)
    other_device = await connect(alice, conversation)

    def log_out() -> None:
        request = RequestFactory().post("/accounts/logout/")
        request.session, request.user = this_session, alice
        logout(request)

    await database_sync_to_async(log_out)()
    assert await _closed_with(tab) == 4401  # the page goes to the log-in page
    assert await _still_open(other_device)
    await other_device.disconnect()


async def test_a_new_password_closes_every_socket_of_the_person(
    alice: Any, bob: Any, conversation: Conversation
) -> None:
    tabs = [await connect(alice, conversation), await connect(alice, conversation)]
    bobs = await connect(bob, await Conversation.objects.acreate(owner=bob, model="demo"))

    def change_password() -> None:
        alice.set_password("a-brand-new-pass-phrase-3")
        alice.save()

    await database_sync_to_async(change_password)()
    for tab in tabs:
        assert await _closed_with(tab) == 4000  # reconnect: only a still-valid session gets in
    assert await _still_open(bobs)
    await bobs.disconnect()


async def test_a_disabled_account_loses_its_sockets(alice: Any, conversation: Conversation) -> None:
    tab = await connect(alice, conversation)
    alice.is_active = False
    await alice.asave()
    assert await _closed_with(tab) == 4401


@pytest.mark.parametrize("how", ["session deleted", "password changed", "account disabled"])
async def test_a_paid_action_on_a_stale_session_is_refused_and_does_nothing(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer, how: str
) -> None:
    session = await database_sync_to_async(signed_in_session)(alice)
    tab = await connect(alice, conversation, session)

    def make_stale() -> None:
        # Behind the sockets' back: no signal reaches them, only the re-check can tell.
        if how == "session deleted":
            session.delete()
        elif how == "password changed":
            type(alice).objects.filter(pk=alice.pk).update(password="pbkdf2_sha256$1$x$y")
        else:
            type(alice).objects.filter(pk=alice.pk).update(is_active=False)

    await database_sync_to_async(make_stale)()
    await send(tab, type="send", content="Spend my coins")
    error = await receive(tab)
    assert (error["type"], error["code"]) == ("error", "auth")
    assert await _closed_with(tab) == 4401
    assert not await Message.objects.filter(conversation=conversation).aexists()
    assert not await LedgerEntry.objects.filter(kind="hold").aexists()
    assert not await LlmUsage.objects.aexists()
    assert anthropic_server.requests == []


def _expiring_session(user: Any, seconds: int) -> Any:
    session = signed_in_session(user)
    session.set_expiry(seconds)
    session.save()
    return session


async def test_a_socket_is_closed_when_its_session_expires(
    alice: Any, conversation: Conversation
) -> None:
    """Once its session has expired, the socket gets no more of the person's replies and can
    stop none: it is closed as signed out (it used to stay open, streaming and stopping)."""
    short = await database_sync_to_async(_expiring_session)(alice, 1)
    tab = await connect(alice, conversation, short)
    other_device = await connect(alice, conversation)
    assert await _closed_with(tab) == 4401
    # A reply started elsewhere after the expiry reaches the other device only.
    await send(other_device, type="send", content="After the expiry")
    assert (await receive(other_device))["type"] == "user_message"
    assert await tab.receive_nothing(timeout=0.3)  # closed: nothing more arrives
    await other_device.disconnect()


async def test_a_frame_after_the_expiry_is_not_acted_on(
    alice: Any, conversation: Conversation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even before the timer fires (a busy loop), a frame that arrives after the session's end
    is not acted on: the socket is closed instead."""
    from chat import consumers

    short = await database_sync_to_async(_expiring_session)(alice, 1)
    late = [False]
    monkeypatch.setattr(
        consumers.ChatConsumer, "_session_due", lambda self: late.__setitem__(0, True)
    )
    tab = await connect(alice, conversation, short)
    await asyncio.sleep(1.2)
    await send(tab, type="send", content="Spend my coins after my session ended")
    assert await _closed_with(tab) == 4401
    assert not await Message.objects.filter(conversation=conversation).aexists()


async def test_a_session_extended_before_its_end_keeps_its_socket(
    alice: Any, conversation: Conversation
) -> None:
    short = await database_sync_to_async(_expiring_session)(alice, 1)
    tab = await connect(alice, conversation, short)

    def extend() -> None:  # what a page does with SESSION_SAVE_EVERY_REQUEST, say
        short.set_expiry(3600)
        short.save()

    await database_sync_to_async(extend)()
    await asyncio.sleep(1.3)
    assert await _still_open(tab)
    await tab.disconnect()


async def test_a_socket_whose_session_ended_behind_its_back_is_closed_by_the_sweep(
    alice: Any, conversation: Conversation
) -> None:
    """A session deleted with no sign-out signal (`clearsessions`, the admin, a database
    restore): each worker's sweep finds it and closes its sockets."""
    from chat import maintenance
    from chat.hub import get_hub

    doomed = await database_sync_to_async(signed_in_session)(alice)
    tab = await connect(alice, conversation, doomed)
    other_device = await connect(alice, conversation)
    await database_sync_to_async(doomed.delete)()
    await maintenance.close_ended_sessions(get_hub())
    assert await _closed_with(tab) == 4401
    assert await _still_open(other_device)
    await other_device.disconnect()
