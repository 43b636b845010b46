"""A reply whose process died is found by its stale heartbeat, ended as interrupted and settled."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from billing import services as billing
from billing.models import LedgerEntry, LlmUsage
from chat import maintenance, services
from chat import relay as relay_module
from chat.models import Conversation, Message
from providers.catalogue import get_model
from tests.chat.helpers import connect, receive

pytestmark = pytest.mark.django_db(transaction=True)


def _orphan(alice: Any, *, age: float) -> Message:
    """A streaming reply with a hold, as a worker leaves it when it is killed mid-reply."""
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    Message.objects.create(conversation=conversation, role="user", content="hello")
    with transaction.atomic():
        start = services.reply_begin(
            conversation=services.conversation_lock(
                owner_id=alice.pk, conversation_id=conversation.pk
            ),
            content="tell me", client_id=None, model=get_model("claude-sonnet-5-5"), byok=False,
            max_tokens=8000, hub="hub.killed!",
        )  # fmt: skip
    Message.objects.filter(pk=start.assistant.pk).update(
        content="Partial text that got this far " * 4,
        heartbeat_at=timezone.now() - dt.timedelta(seconds=age),
    )
    return Message.objects.get(pk=start.assistant.pk)


def _ledger_sum(user: Any) -> int:
    return int(LedgerEntry.objects.filter(account__user=user).aggregate(s=Sum("amount"))["s"])


def test_a_stale_reply_is_ended_interrupted_keeps_its_text_and_pays_only_its_output(
    alice: Any, settings: Any
) -> None:
    orphan = _orphan(alice, age=settings.REPLY_STALE_AFTER + 5)
    held = billing.balance_of(user_id=alice.pk)
    assert held < 1000  # the hold is out
    assert maintenance.replies_sweep_stale() == [orphan.pk]
    orphan.refresh_from_db()
    assert orphan.status == "interrupted" and orphan.content.startswith("Partial text")
    usage = LlmUsage.objects.get(message_id=orphan.pk)
    assert usage.status == "interrupted" and usage.usage_estimated and usage.input_tokens == 0
    assert usage.output_tokens == len(orphan.content) // 4 + (len(orphan.content) % 4 > 0)
    balance = billing.balance_of(user_id=alice.pk)
    assert balance == 1000 - usage.coins_charged == _ledger_sum(alice)
    assert maintenance.replies_sweep_stale() == []  # settled once


def test_a_live_reply_is_left_alone(alice: Any) -> None:
    live = _orphan(alice, age=1)
    assert maintenance.replies_sweep_stale() == []
    live.refresh_from_db()
    assert live.status == "streaming"


def test_a_late_ending_from_the_runner_does_not_settle_twice(alice: Any, settings: Any) -> None:
    orphan = _orphan(alice, age=settings.REPLY_STALE_AFTER + 5)
    maintenance.replies_sweep_stale()
    balance = billing.balance_of(user_id=alice.pk)
    with transaction.atomic():
        ended = services.reply_finish(
            message_id=orphan.pk, status="complete", content="late", thinking=""
        )
    assert not ended
    assert billing.balance_of(user_id=alice.pk) == balance
    orphan.refresh_from_db()
    assert orphan.status == "interrupted"


def test_opening_the_conversation_finds_it_interrupted(
    client: Client, alice: Any, settings: Any
) -> None:
    orphan = _orphan(alice, age=settings.REPLY_STALE_AFTER + 5)
    client.force_login(alice)
    html = client.get(f"/chat/{orphan.conversation_id}/").content.decode()
    assert 'data-status="interrupted"' in html and "interrupted" in html
    assert '<div class="indicator" id="indicator" hidden>' in html
    assert "Retry" in html


async def test_a_socket_connecting_finds_it_interrupted(alice: Any, settings: Any) -> None:
    from channels.db import database_sync_to_async

    orphan = await database_sync_to_async(_orphan)(alice, age=settings.REPLY_STALE_AFTER + 5)
    conversation = await Conversation.objects.aget(pk=orphan.conversation_id)
    tab = await connect(alice, conversation)
    snapshot = await receive(tab)
    assert snapshot["type"] == "message_snapshot" and snapshot["status"] == "interrupted"
    assert snapshot["content"].startswith("Partial text")
    assert (await receive(tab))["type"] == "user_message"
    await tab.disconnect()


async def test_a_tab_watching_a_reply_whose_worker_dies_sees_it_interrupted_once_stale(
    alice: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hub answers the tab's request to watch: it reads the database again until the reply,
    stale by then, is ended there."""
    from channels.db import database_sync_to_async

    monkeypatch.setattr(relay_module, "WATCH_RECHECK_AFTER", 0.2)
    orphan = await database_sync_to_async(_orphan)(alice, age=settings.REPLY_STALE_AFTER - 1)
    conversation = await Conversation.objects.aget(pk=orphan.conversation_id)
    tab = await connect(alice, conversation)
    snapshot = await receive(tab)
    assert snapshot["type"] == "message_snapshot" and snapshot["status"] == "streaming"
    assert (await receive(tab))["type"] == "user_message"
    branch = await receive(tab)
    assert branch == {
        "type": "branch",
        "conversation_id": conversation.pk,
        "path": [orphan.parent_id, orphan.pk],
    }
    end = await receive(tab, timeout=10)
    assert end["type"] == "message_snapshot" and end["status"] == "interrupted"
    assert end["content"].startswith("Partial text")
    await tab.disconnect()
