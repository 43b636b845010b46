"""A reply's last save can fail (a database restart, a deadlock, a constraint): what the person
saw is never lost. The text is saved first, the settle is tried again with backoff, and a reply
whose bill still cannot be written ends with its text, marked unsettled: the sweep bills it
later, `reconcile_coins` lists it meanwhile. Runs on SQLite and, in CI, on PostgreSQL."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection, transaction
from django.db.models import Sum

from billing.models import LedgerEntry, LlmUsage
from billing.services import balance_of
from chat import maintenance, runner, services, settlement
from chat.models import Conversation, Message
from providers.catalogue import get_model
from providers.events import Usage
from tests.chat.helpers import ClientView, connect, send, until_end
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)

CHUNKS = ["Every ", "word ", "the person ", "saw ", "is kept."]


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settlement, "SETTLE_RETRY_WAITS", (0.01, 0.01, 0.01))
    monkeypatch.setattr(settlement, "UNSETTLED_RETRY_WAITS", (0.01,))


def _failing(times: float, real: Any) -> tuple[list[int], Any]:
    calls: list[int] = []

    def settle(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("the database went away")
        return real(**kwargs)

    return calls, settle


async def _reply(alice: Any, server: SSEServer) -> tuple[dict[str, Any], str]:
    server.enqueue(text_reply(CHUNKS, input_tokens=40, output_tokens=12))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Say something")
    frames = await until_end(tab)
    view = ClientView()
    for frame in frames:
        view.apply(frame)
    await runner.wait_for_replies()
    await tab.disconnect()
    return frames[-1], view.text[frames[-1]["message_id"]]


def _books(user: Any) -> tuple[int, int]:
    total = LedgerEntry.objects.filter(account__user=user).aggregate(s=Sum("amount"))["s"]
    return balance_of(user_id=user.pk), int(total)


async def test_a_settle_that_fails_twice_is_tried_again_and_bills_once(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls, flaky = _failing(2, services.reply_settle)
    monkeypatch.setattr(services, "reply_settle", flaky)
    end, seen = await _reply(alice, anthropic_server)
    assert len(calls) == 3
    assert end["type"] == "message_stop" and end["coins_charged"] > 0
    reply = await Message.objects.aget(pk=end["message_id"])
    assert (reply.status, reply.content, reply.unsettled) == ("complete", seen, False)
    usage = await LlmUsage.objects.aget(message_id=reply.pk)
    assert (usage.input_tokens, usage.output_tokens) == (40, 12)
    assert usage.coins_charged == end["coins_charged"]
    balance, ledger = await database_sync_to_async(_books)(alice)
    assert balance == ledger == end["balance"]


async def test_a_settle_that_keeps_failing_keeps_the_text_and_is_billed_later(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = services.reply_settle
    calls, broken = _failing(float("inf"), real)
    monkeypatch.setattr(services, "reply_settle", broken)
    end, seen = await _reply(alice, anthropic_server)
    assert len(calls) == 1 + len(settlement.SETTLE_RETRY_WAITS)
    # The tab saw the whole reply end; the row holds all of it, ended, marked for billing.
    assert end["type"] == "message_stop" and seen == "".join(CHUNKS)
    reply = await Message.objects.aget(pk=end["message_id"])
    assert (reply.status, reply.content, reply.unsettled) == ("complete", seen, True)
    assert (reply.input_tokens, reply.output_tokens) == (40, 12)
    assert not await LlmUsage.objects.filter(message_id=reply.pk).aexists()
    # The books still balance (the hold is out), and the command names the reply.
    balance, ledger = await database_sync_to_async(_books)(alice)
    assert balance == ledger < 1000
    out = StringIO()
    with pytest.raises(CommandError, match="1 repl"):
        await database_sync_to_async(call_command)("reconcile_coins", stdout=out)
    assert f"reply {reply.pk} " in out.getvalue()
    # The database is back. The conversation is not blocked: the next send starts at once.
    monkeypatch.setattr(services, "reply_settle", real)
    anthropic_server.enqueue(text_reply(["Next."]))
    tab = await connect(alice, await Conversation.objects.aget(pk=reply.conversation_id))
    await send(tab, type="send", content="And now?")
    assert (await until_end(tab))[-1]["type"] == "message_stop"
    await runner.wait_for_replies()
    await tab.disconnect()

    # The sweep bills it, once.
    assert await database_sync_to_async(maintenance.replies_settle_unsettled)() == [reply.pk]
    assert await database_sync_to_async(maintenance.replies_settle_unsettled)() == []
    usage = await LlmUsage.objects.aget(message_id=reply.pk)
    assert (usage.status, usage.input_tokens, usage.output_tokens) == ("ok", 40, 12)
    assert usage.coins_charged > 0
    kinds = [e.kind async for e in LedgerEntry.objects.filter(message_id=reply.pk).order_by("pk")]
    assert kinds == ["hold", "release", "capture"]
    balance, ledger = await database_sync_to_async(_books)(alice)
    assert balance == ledger
    await database_sync_to_async(call_command)("reconcile_coins", stdout=StringIO())


def _refuse_usage_rows() -> None:
    """A trigger that makes every LlmUsage insert fail: the settle's last write, after the
    reply's ending and its ledger entries were written in the same transaction."""
    table = LlmUsage._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_usage() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'usage rows refused'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse_usage BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_usage()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER refuse_usage BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'usage rows refused'); END"
            )


def _allow_usage_rows() -> None:
    table = LlmUsage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"DROP TRIGGER refuse_usage ON {table}"
            if connection.vendor == "postgresql"
            else "DROP TRIGGER refuse_usage"
        )
        if connection.vendor == "postgresql":
            cursor.execute("DROP FUNCTION refuse_usage()")


async def test_a_settle_refused_by_the_database_is_undone_whole_and_the_text_kept(
    alice: Any, anthropic_server: SSEServer
) -> None:
    await database_sync_to_async(_refuse_usage_rows)()
    try:
        end, seen = await _reply(alice, anthropic_server)
        reply = await Message.objects.aget(pk=end["message_id"])
        assert (reply.status, reply.content, reply.unsettled) == ("complete", seen, True)
        # Nothing of the failed settles stayed: only the hold is in the ledger.
        kinds = [e.kind async for e in LedgerEntry.objects.filter(message_id=reply.pk)]
        assert kinds == ["hold"]
        balance, ledger = await database_sync_to_async(_books)(alice)
        assert balance == ledger
    finally:
        await database_sync_to_async(_allow_usage_rows)()
    out = StringIO()
    await database_sync_to_async(call_command)("reconcile_coins", "--settle", stdout=out)
    assert f"Settled 1 repl(ies): [{reply.pk}]" in out.getvalue()
    assert await LlmUsage.objects.filter(message_id=reply.pk, status="ok").aexists()


def test_an_admin_sees_unsettled_replies_and_bills_them(alice: Any, admin_client: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")
    with transaction.atomic():
        start = services.reply_begin(
            conversation=services.conversation_lock(
                owner_id=alice.pk, conversation_id=conversation.pk
            ),
            content="hello", client_id=None, model=get_model("claude-sonnet-5-5"), byok=False,
            max_tokens=1000, hub="hub.test!",
        )  # fmt: skip
    services.reply_finish(
        message_id=start.assistant.pk, status="complete", content="Kept.", thinking="",
        usage=Usage(input_tokens=30, output_tokens=3), unsettled=True,
    )  # fmt: skip
    listed = admin_client.get("/admin/chat/message/?unsettled__exact=1").content.decode()
    assert f"/admin/chat/message/{start.assistant.pk}/change/" in listed
    response = admin_client.post(
        "/admin/chat/message/",
        {"action": "settle_now", "_selected_action": [start.assistant.pk]},
        follow=True,
    )
    assert "Billed 1 of 1 unsettled repl(ies)." in response.content.decode()
    usage = LlmUsage.objects.get(message_id=start.assistant.pk)
    assert (usage.input_tokens, usage.output_tokens, usage.status) == (30, 3, "ok")
    assert not Message.objects.get(pk=start.assistant.pk).unsettled
    balance, ledger = _books(alice)
    assert balance == ledger == 1000 - usage.coins_charged
