"""A worker shutting down (SIGTERM: chat/shutdown.py) ends its live replies first: each is saved
with its text, settled, ended as interrupted with Retry offered, its tabs told; new sends are
refused meanwhile; then the sockets are closed so their pages reconnect. Against real daphne
and uvicorn processes: tests/e2e/test_shutdown.py."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db.models import Sum

from billing.models import LedgerEntry, LlmUsage
from billing.services import balance_of
from chat import shutdown
from chat.frames import Close
from chat.hub import get_hub
from chat.models import Conversation, Message
from tests.chat.helpers import ClientView, connect, receive, send, until_end
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)


def _books(user_id: int) -> tuple[int, int]:
    total = LedgerEntry.objects.filter(account__user_id=user_id).aggregate(s=Sum("amount"))["s"]
    return balance_of(user_id=user_id), int(total)


async def test_shutting_down_ends_live_replies_saved_settled_and_offered_again(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    anthropic_server.enqueue(text_reply([f"part{i} " for i in range(2000)], delay=0.005))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="A long one, please")
    view = ClientView()
    while (frame := await receive(tab))["type"] != "text_delta":
        view.apply(frame)
    view.apply(frame)

    monkeypatch.setattr(shutdown, "_closing", True)
    await shutdown.end_live_replies(get_hub(), grace=5)
    frames = await until_end(tab)
    for frame in frames:
        view.apply(frame)
    end = frames[-1]
    assert (end["type"], end["code"], end["retryable"]) == ("error", "interrupted", True)
    assert "restarted" in end["message"]
    reply = await Message.objects.aget(pk=end["message_id"])
    assert reply.status == "interrupted" and reply.error_code == "interrupted"
    assert reply.content == end["partial_content"] == view.text[reply.pk]
    assert reply.content.startswith("part0 ") and not reply.unsettled
    # Settled now, not left for the sweep: the hold released, the output billed.
    kinds = {e.kind async for e in LedgerEntry.objects.filter(message_id=reply.pk)}
    assert kinds == {"hold", "release", "capture"}
    usage = await LlmUsage.objects.aget(message_id=reply.pk)
    assert usage.status == "interrupted" and usage.output_tokens > 0
    balance, ledger = await database_sync_to_async(_books)(alice.pk)
    assert balance == ledger
    recorded = anthropic_server.wait_for_disconnect(2.0)
    assert not recorded.completed  # the upstream stream was closed
    # The socket is then closed for the page to reconnect elsewhere.
    output = await tab.receive_output(timeout=3)
    assert output == {"type": "websocket.close", "code": int(Close.RESYNC)}


async def test_a_send_while_shutting_down_is_refused_and_writes_nothing(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    tab = await connect(alice, conversation)
    monkeypatch.setattr(shutdown, "_closing", True)
    await send(tab, type="send", content="Just as it restarts", client_id="c-1")
    refusal = await receive(tab)
    assert (refusal["code"], refusal["retryable"], refusal["client_id"]) == (
        "unavailable", True, "c-1"
    )  # fmt: skip
    assert "restarting" in refusal["message"]
    assert not await Message.objects.filter(conversation=conversation).aexists()
    assert anthropic_server.requests == []
    await tab.disconnect()
