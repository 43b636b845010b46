"""Managing conversations: the list (only conversations with a message, newest first, by
pages), empty ones removed after a day, titles after the first reply with text, renaming (the
person's title wins and reaches every tab) and deleting (a running reply stopped first, the text
gone, every coin and usage number kept, every tab told)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from billing.models import LedgerEntry, LlmUsage
from chat import conversations, maintenance
from chat.models import Conversation, Message, OpenSocket
from tests.chat.helpers import connect, receive, send, until_end
from tests.fakes.anthropic import message_response, text_reply
from tests.fakes.sse_server import SSEServer

CLAUDE = "claude-sonnet-5-5"


def _with_message(owner: Any, title: str = "New chat") -> Conversation:
    conversation = Conversation.objects.create(owner=owner, model=CLAUDE, title=title)
    message = Message.objects.create(conversation=conversation, role="user", content="hi")
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=message)
    return conversation


def _signed_in(person: Any) -> Client:
    client = Client()
    client.force_login(person)
    return client


# --- the list ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_conversation_without_a_message_is_never_listed(alice: Any) -> None:
    empty = Conversation.objects.create(owner=alice, model=CLAUDE, title="Empty one")
    used = _with_message(alice, "Used one")
    client = _signed_in(alice)
    for page in ("/chat/", f"/chat/{used.pk}/"):
        html = client.get(page).content.decode()
        assert "Used one" in html and "Empty one" not in html
    # It is still there to write in.
    assert client.get(f"/chat/{empty.pk}/").status_code == 200


@pytest.mark.django_db
def test_the_list_comes_in_pages_newest_first_with_nothing_repeated_or_skipped(
    alice: Any, bob: Any
) -> None:
    made = [_with_message(alice, f"Chat {i}") for i in range(120)]
    _with_message(bob, "Bob's")
    seen: list[int] = []
    after = None
    while True:
        listing = conversations.page(owner_id=alice.pk, after=after)
        seen += [c.pk for c in listing.conversations]
        if listing.after is None:
            break
        after = listing.after
    assert seen == [c.pk for c in reversed(made)]  # the newest first (same times: by id)
    html = _signed_in(alice).get("/chat/").content.decode()
    assert html.count('class="conversation-row"') == 50 and "Older conversations" in html
    assert "Bob&#x27;s" not in html
    assert conversations.page(owner_id=alice.pk, after="not-a-cursor").conversations == []
    assert _signed_in(alice).get("/chat/?after=x_y").status_code == 200


@pytest.mark.django_db
def test_empty_conversations_are_removed_after_a_day_unless_a_tab_shows_them(alice: Any) -> None:
    old = Conversation.objects.create(owner=alice, model=CLAUDE)
    open_in_a_tab = Conversation.objects.create(owner=alice, model=CLAUDE)
    young = Conversation.objects.create(owner=alice, model=CLAUDE)
    used = _with_message(alice)
    day_ago = timezone.now() - dt.timedelta(days=1, minutes=1)
    Conversation.objects.exclude(pk=young.pk).update(created_at=day_ago)
    OpenSocket.objects.create(
        user_id=alice.pk, hub="h", conversation_id=open_in_a_tab.pk, seen_at=timezone.now()
    )
    assert maintenance.empty_conversations_remove() == 1
    assert set(Conversation.objects.values_list("pk", flat=True)) == {
        open_in_a_tab.pk,
        young.pk,
        used.pk,
    }
    assert old.pk not in Conversation.objects.values_list("pk", flat=True)


# --- titles -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_first_reply_that_failed_with_text_names_the_conversation(
    alice: Any, anthropic_server: SSEServer, settings: Any
) -> None:
    settings.AUTO_TITLES = True
    conversation = await Conversation.objects.acreate(owner=alice, model=CLAUDE)
    anthropic_server.enqueue(
        text_reply(["Half ", "a story"], error_after=2), message_response("A Half Story")
    )
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Tell me a story")
    assert (await until_end(tab))[-1]["type"] == "error"
    while (frame := await receive(tab))["type"] != "conversation_title":
        pass
    assert frame["title"] == "A Half Story"
    await conversation.arefresh_from_db()
    assert conversation.title == "A Half Story" and not conversation.title_by_person
    await tab.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_reply_without_text_leaves_the_title_to_the_next_one(
    alice: Any, anthropic_server: SSEServer, waits: list[float], settings: Any
) -> None:
    settings.AUTO_TITLES = True
    from tests.fakes.anthropic import error_response

    conversation = await Conversation.objects.acreate(owner=alice, model=CLAUDE)
    anthropic_server.enqueue(
        error_response(400, "invalid_request_error", "nope"),
        text_reply(["Fine."]),
        message_response("Second Go"),
    )
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="First")
    assert (await until_end(tab))[-1]["type"] == "error"
    await send(tab, type="send", content="Second")
    await until_end(tab)
    while (frame := await receive(tab))["type"] != "conversation_title":
        pass
    assert frame["title"] == "Second Go"
    await tab.disconnect()


# --- rename -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_rename_reaches_every_tab_and_wins_over_the_automatic_title(
    alice: Any, anthropic_server: SSEServer, settings: Any
) -> None:
    settings.AUTO_TITLES = True
    conversation = await database_sync_to_async(_with_message)(alice)
    other = await database_sync_to_async(_with_message)(alice, "Another")
    here, elsewhere = await connect(alice, conversation), await connect(alice, other)
    for tab in (here,):
        while (await receive(tab))["type"] != "branch":
            pass
    client = await database_sync_to_async(_signed_in)(alice)
    response = await database_sync_to_async(client.post)(
        f"/chat/{conversation.pk}/rename/",
        {"title": "  My   own\tname "},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200 and response.json() == {"title": "My own name"}
    expected = {
        "type": "conversation_title",
        "conversation_id": conversation.pk,
        "title": "My own name",
    }
    assert await receive(here) == expected
    while (frame := await receive(elsewhere))["type"] != "conversation_title":
        pass
    assert frame == expected  # its list follows too
    # A reply with text afterwards does not rename it.
    anthropic_server.enqueue(text_reply(["Sure."]), message_response("Automatic"))
    await send(here, type="send", content="Go on")
    await until_end(here)
    await conversation.arefresh_from_db()
    assert (conversation.title, conversation.title_by_person) == ("My own name", True)
    assert not [r for r in anthropic_server.requests if not r.body.get("stream")]
    await here.disconnect()
    await elsewhere.disconnect()


@pytest.mark.django_db
def test_a_bad_title_is_refused_and_another_persons_conversation_is_missing(
    alice: Any, bob: Any
) -> None:
    conversation = _with_message(alice, "Kept")
    client = _signed_in(alice)
    for title in ("", "   ", "x" * 201):
        response = client.post(
            f"/chat/{conversation.pk}/rename/", {"title": title}, HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 400 and response.json()["error"]
    conversation.refresh_from_db()
    assert conversation.title == "Kept"
    bobs = _signed_in(bob)
    foreign = bobs.post(f"/chat/{conversation.pk}/rename/", {"title": "Mine"})
    missing = bobs.post("/chat/999999/rename/", {"title": "Mine"})
    assert foreign.status_code == missing.status_code == 404
    assert foreign.content == missing.content
    # A plain form post goes back to the conversation.
    done = client.post(f"/chat/{conversation.pk}/rename/", {"title": "Renamed"})
    assert done.status_code == 302 and done["Location"] == f"/chat/{conversation.pk}/"


# --- delete -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_delete_asks_first_naming_the_conversation(alice: Any, bob: Any) -> None:
    conversation = _with_message(alice, "Holiday <plans>")
    page = _signed_in(alice).get(f"/chat/{conversation.pk}/delete/").content.decode()
    assert '>Delete “<span class="delete-title">Holiday &lt;plans&gt;</span>”?<' in page
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    for method in ("get", "post"):
        foreign = getattr(_signed_in(bob), method)(f"/chat/{conversation.pk}/delete/")
        missing = getattr(_signed_in(bob), method)("/chat/999999/delete/")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def _numbers(person: Any) -> tuple[Any, ...]:
    usage = LlmUsage.objects.filter(user=person)
    return (
        usage.count(),
        usage.aggregate(s=Sum("coins_charged"))["s"],
        usage.aggregate(s=Sum("output_tokens"))["s"],
        LedgerEntry.objects.filter(account__user=person).aggregate(s=Sum("amount"))["s"],
        person.coin_account.balance,
    )


@pytest.mark.django_db(transaction=True)
async def test_delete_stops_the_running_reply_keeps_every_number_and_tells_every_tab(
    alice: Any, anthropic_server: SSEServer
) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model=CLAUDE, title="Gone")
    other = await database_sync_to_async(_with_message)(alice, "Stays")
    anthropic_server.enqueue(text_reply(["Done."]))
    anthropic_server.enqueue(text_reply([f"w{i} " for i in range(200)], delay=0.05))
    tab = await connect(alice, conversation)
    elsewhere = await connect(alice, other)
    while (await receive(elsewhere))["type"] != "branch":
        pass
    await send(tab, type="send", content="One")
    await until_end(tab)
    await send(tab, type="send", content="Two, long")
    while (await receive(tab))["type"] != "text_delta":
        pass
    client = await database_sync_to_async(_signed_in)(alice)
    response = await database_sync_to_async(client.post)(f"/chat/{conversation.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/chat/?deleted=1"
    # Gone for the person at once, though its reply is still being stopped.
    page = await database_sync_to_async(client.get)(f"/chat/{conversation.pk}/")
    assert page.status_code == 404

    frames: list[dict[str, Any]] = []
    while not {"message_stop", "conversation_deleted"} <= {f["type"] for f in frames}:
        frames.append(await receive(tab))
    kinds = {f["type"]: f for f in frames}
    assert kinds["conversation_deleted"] == {
        "type": "conversation_deleted",
        "conversation_id": conversation.pk,
    }
    assert kinds["message_stop"]["stop_reason"] == "stopped"
    while (await receive(elsewhere))["type"] != "conversation_deleted":
        pass
    # Its rows go once the stopped reply is saved and billed.
    for _ in range(100):
        if not await Conversation.objects.filter(pk=conversation.pk).aexists():
            break
        await asyncio.sleep(0.02)
    assert not await Conversation.objects.filter(pk=conversation.pk).aexists()
    assert not await Message.objects.filter(conversation_id=conversation.pk).aexists()
    await alice.arefresh_from_db()
    account = await database_sync_to_async(lambda: alice.coin_account)()
    await account.arefresh_from_db()
    _, coins, tokens, ledger, balance = await database_sync_to_async(_numbers)(alice)
    # Both replies are still recorded and billed, by the deleted conversation's id.
    replies = LlmUsage.objects.filter(conversation_id=conversation.pk, purpose="reply")
    assert await replies.acount() == 2
    assert {u.status async for u in replies} == {"ok", "stopped"}
    assert ledger == balance and coins and tokens
    # The text is gone from the pages too.
    listing = (await database_sync_to_async(client.get)("/chat/?deleted=1")).content.decode()
    assert "The conversation was deleted." in listing
    assert f"/chat/{conversation.pk}/" not in listing
    await tab.disconnect()
    await elsewhere.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_deleted_conversation_takes_no_socket_or_send_and_its_usage_keeps_no_link(
    alice: Any,
) -> None:
    from channels.testing import WebsocketCommunicator

    from tests.chat.helpers import router, signed_in_session

    conversation = await database_sync_to_async(_with_message)(alice, "Secret plans")
    tab = await connect(alice, conversation)
    client = await database_sync_to_async(_signed_in)(alice)
    await database_sync_to_async(LlmUsage.objects.create)(
        user=alice, conversation_id=conversation.pk, provider="demo", model="demo", status="ok"
    )
    await database_sync_to_async(client.post)(f"/chat/{conversation.pk}/delete/", follow=True)
    await send(tab, type="send", content="Still there?")
    while (frame := await receive(tab))["type"] != "error":
        pass
    assert frame["code"] == "not_found"
    late = WebsocketCommunicator(router, f"/ws/chat/{conversation.pk}/")
    late.scope["session"] = await database_sync_to_async(signed_in_session)(alice)
    connected, _ = await late.connect()
    assert connected and (await late.receive_output())["code"] == 4404
    usage = (await database_sync_to_async(client.get)("/usage/")).content.decode()
    assert "Secret plans" not in usage and "a deleted conversation" in usage
    await tab.disconnect()


@pytest.mark.django_db
def test_a_deleted_conversation_whose_worker_died_is_removed_by_the_sweep(alice: Any) -> None:
    conversation = _with_message(alice, "Orphan")
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        status="streaming",
        hub="hub.gone!",
        heartbeat_at=timezone.now() - dt.timedelta(hours=1),
    )
    conversations.delete(owner_id=alice.pk, conversation_id=conversation.pk)
    # Hidden at once; kept while its reply is still streaming, as far as anyone knows.
    assert conversations.listed(owner_id=alice.pk).count() == 0
    assert maintenance.deleted_conversations_remove() == 0
    assert maintenance.replies_sweep_stale() != []
    assert maintenance.deleted_conversations_remove() >= 1
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
