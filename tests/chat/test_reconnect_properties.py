"""Property: whoever connects, leaves and comes back, every tab ends with exactly the reply."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat import runner
from chat.models import Conversation, Message
from tests.chat.helpers import ClientView, connect, receive, send
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer
from tests.strategies import delta_splits

pytestmark = pytest.mark.django_db(transaction=True)

DELAY = 0.004  # seconds between the provider's deltas

# A tab: when it connects, and optionally when it drops and when it comes back (in deltas).
tab_plans = st.lists(
    st.tuples(
        st.integers(0, 60),
        st.one_of(st.none(), st.tuples(st.integers(1, 30), st.integers(0, 30))),
    ),
    min_size=1,
    max_size=4,
)


async def _until_end(tab: Any, view: ClientView, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        frame = await receive(tab, max(0.01, deadline - loop.time()))
        view.apply(frame)
        if frame["type"] in ("message_stop", "error") or (
            frame["type"] == "message_snapshot" and frame["status"] != "streaming"
        ):
            return


async def _tab(user: Any, conversation: Conversation, plan: Any) -> ClientView:
    join, drop = plan
    await asyncio.sleep(join * DELAY)
    tab = await connect(user, conversation)
    if drop is not None:
        stay, away = drop
        await asyncio.sleep(stay * DELAY)
        await tab.disconnect()
        await asyncio.sleep(away * DELAY)
        tab = await connect(user, conversation)
    view = ClientView()  # what the page holds after its last (re)connect: snapshot, then deltas
    await _until_end(tab, view, asyncio.get_running_loop().time() + 10)
    await tab.disconnect()
    return view


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(chunks=delta_splits(), plans=tab_plans)
async def test_random_disconnects_reconnects_and_second_tabs_all_end_with_the_reply(
    alice: Any, anthropic_server: SSEServer, chunks: list[str], plans: list[Any]
) -> None:
    anthropic_server.enqueue(text_reply(chunks, delay=DELAY))
    conversation = await database_sync_to_async(Conversation.objects.create)(
        owner=alice, model="claude-sonnet-5-5"
    )
    sender = await connect(alice, conversation)
    await send(sender, type="send", content="go")
    views = await asyncio.gather(*(_tab(alice, conversation, plan) for plan in plans))
    await sender.disconnect()
    await runner.wait_for_replies()
    expected = "".join(chunks)
    message = await Message.objects.filter(conversation=conversation, role="assistant").aget()
    assert message.content == expected
    for view in views:
        assert view.gaps == 0
        assert view.text[message.pk] == expected
