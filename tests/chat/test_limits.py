"""Per-person limits in the shared store (the database): sends per minute and open sockets."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from billing.models import LedgerEntry
from chat import limits, runner
from chat.models import Conversation, Message, OpenSocket
from tests.chat.helpers import connect, receive, send, signed_in_session, until_end

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conversation(alice: Any) -> Conversation:
    return Conversation.objects.create(owner=alice, model="demo")


async def test_sends_over_the_per_minute_limit_get_rate_limited_with_the_wait(
    alice: Any, bob: Any, conversation: Conversation, settings: Any
) -> None:
    settings.SENDS_PER_MINUTE = 3
    tab = await connect(alice, conversation)
    for n in range(3):
        await send(tab, type="send", content=f"message {n}")
        assert (await until_end(tab))[-1]["type"] == "message_stop"
    await runner.wait_for_replies()
    holds = await LedgerEntry.objects.filter(kind="hold").acount()
    await send(tab, type="send", content="one too many")
    error = await receive(tab)
    assert (error["code"], error["retryable"]) == ("rate_limited", True)
    assert 1 <= error["retry_after"] <= 60 and "Try again in" in error["message"]
    # Nothing written, nothing held, no reply.
    assert not await Message.objects.filter(content="one too many").aexists()
    assert await LedgerEntry.objects.filter(kind="hold").acount() == holds
    # The socket still works, and another person is not affected.
    await send(tab, type="stop")
    assert await tab.receive_nothing(timeout=0.2)
    await tab.disconnect()
    bobs = await connect(bob, await Conversation.objects.acreate(owner=bob, model="demo"))
    await send(bobs, type="send", content="hi")
    assert (await until_end(bobs))[-1]["type"] == "message_stop"
    await bobs.disconnect()
    await runner.wait_for_replies()


def test_the_send_window_is_shared_and_resets_each_minute(alice: Any, settings: Any) -> None:
    settings.SENDS_PER_MINUTE = 2
    start = 1_800_000_000.0  # the start of a minute
    # Counted in the database: what any worker counted, every worker sees.
    assert limits.paid_action_wait(user_id=alice.pk, now=start) is None
    assert limits.paid_action_wait(user_id=alice.pk, now=start + 10) is None
    assert limits.paid_action_wait(user_id=alice.pk, now=start + 15) == 45
    assert limits.paid_action_wait(user_id=alice.pk, now=start + 60) is None
    assert limits.windows_forget_old(now=start + 180) == 2


async def test_too_many_open_sockets_are_refused_with_a_clear_close(
    alice: Any, conversation: Conversation, settings: Any
) -> None:
    settings.SOCKETS_PER_PERSON = 2
    first, second = await connect(alice, conversation), await connect(alice, conversation)
    third = WebsocketCommunicator(first.application, f"/ws/chat/{conversation.pk}/")
    third.scope.update(first.scope)
    connected, _ = await third.connect()
    assert connected
    error = await receive(third)
    assert error["code"] == "rate_limited" and "at most 2" in error["message"]
    assert (await third.receive_output(timeout=2)) == {"type": "websocket.close", "code": 4429}
    assert await OpenSocket.objects.filter(user_id=alice.pk).acount() == 2
    await second.disconnect()
    again = await connect(alice, conversation)  # a closed socket frees its place
    await again.disconnect()
    await first.disconnect()
    assert not await OpenSocket.objects.filter(user_id=alice.pk).aexists()


async def test_sockets_of_a_worker_that_died_stop_counting(
    alice: Any, conversation: Conversation, settings: Any
) -> None:
    settings.SOCKETS_PER_PERSON = 1
    stale = timezone.now() - dt.timedelta(seconds=limits.SOCKET_LEASE + 1)
    await OpenSocket.objects.acreate(user_id=alice.pk, hub="hub.dead!", seen_at=stale)
    tab = await connect(alice, conversation)
    await database_sync_to_async(limits.sockets_renew)(hub="hub.alive!")
    assert not await OpenSocket.objects.filter(hub="hub.dead!").aexists()
    await tab.disconnect()


def test_a_socket_whose_catch_up_cannot_be_read_leaves_no_row_counting_against_its_person(
    alice: Any, conversation: Conversation, monkeypatch: Any
) -> None:
    from chat import consumers

    def unreadable(**_: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(consumers, "swept_exchange_and_tree", unreadable)
    with pytest.raises(RuntimeError):
        consumers._open(
            session=signed_in_session(alice),
            conversation_id=conversation.pk,
            hub="hub.x!1",
            sweep=True,
        )
    assert not OpenSocket.objects.filter(user_id=alice.pk).exists()
