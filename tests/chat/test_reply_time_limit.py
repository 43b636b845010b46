"""A reply has a total-time cap (REPLY_MAX_SECONDS): a provider that drips a token now and then
for ever, never silent long enough for the idle timeout, is ended as `timeout` with its text,
billed for what it wrote."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db.models import Sum

from billing.models import LedgerEntry, LlmUsage
from billing.services import balance_of
from chat.models import Conversation, Message
from tests.chat.helpers import ClientView, connect, send, until_end
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_drip_feeding_provider_is_ended_as_timeout_with_its_text(
    alice: Any, anthropic_server: SSEServer, settings: Any
) -> None:
    settings.REPLY_MAX_SECONDS = 1.0
    # A token every 0.1 s for 100 s: far below the idle timeout, far above the cap.
    anthropic_server.enqueue(text_reply([f"drip{i} " for i in range(1000)], delay=0.1))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    tab = await connect(alice, conversation)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await send(tab, type="send", content="Take your time")
    frames = await until_end(tab, timeout=10)
    assert loop.time() - began < 3
    view = ClientView()
    for frame in frames:
        view.apply(frame)
    end = frames[-1]
    assert end["type"] == "error" and end["code"] == "timeout" and end["retryable"]
    assert "after 1 second," in end["message"]
    assert end["partial_content"].startswith("drip0 drip1 ")
    recorded = await loop.run_in_executor(None, anthropic_server.wait_for_disconnect, 2.0)
    assert not recorded.completed  # the upstream stream was closed
    reply = await Message.objects.aget(pk=end["message_id"])
    assert reply.status == "error" and reply.error_code == "timeout"
    assert reply.content == end["partial_content"] == view.text[reply.pk]
    usage = await LlmUsage.objects.aget(message_id=reply.pk)
    assert usage.output_tokens > 0 and usage.usage_estimated and usage.coins_charged > 0
    entries = LedgerEntry.objects.filter(account__user=alice).aaggregate(total=Sum("amount"))
    assert (await entries)["total"] == await _balance(alice)
    await tab.disconnect()


async def _balance(user: Any) -> int:
    return await database_sync_to_async(balance_of)(user_id=user.pk)
