"""Branches over the socket: regenerate, edit and select keep every message, send the branch
upstream, and every tab follows the current branch (DESIGN.md section 4, invariant 9)."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from billing.models import LlmUsage
from chat.models import Conversation, Message
from tests.chat.helpers import connect, receive, send, until_end
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)

CLAUDE = "claude-sonnet-5-5"


@pytest.fixture
def conversation(alice: Any) -> Conversation:
    return Conversation.objects.create(owner=alice, model=CLAUDE)


def _streamed(server: SSEServer) -> list[Any]:
    """The reply calls' request bodies (a title call is not streamed)."""
    return [r.body for r in server.requests if r.body.get("stream")]


async def _leaf(conversation: Conversation) -> int | None:
    await conversation.arefresh_from_db()
    return conversation.current_leaf_id


async def _exchange(tab: Any, content: str, **fields: Any) -> tuple[dict[str, Any], ...]:
    """Send a message; its `user_message`, `message_start` and last frame."""
    await send(tab, type="send", content=content, **fields)
    frames = await until_end(tab)
    by_type = {f["type"]: f for f in frames}
    return by_type["user_message"], by_type["message_start"], frames[-1]


async def test_regenerate_adds_a_sibling_reply_and_keeps_the_old_one(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["First."]), text_reply(["Second."]))
    tab = await connect(alice, conversation)
    asked, first, _ = await _exchange(tab, "Question")
    assert first["parent_id"] == asked["message_id"] and asked["parent_id"] is None

    await send(tab, type="regenerate", message_id=first["message_id"])
    frames = await until_end(tab)
    start = frames[0]
    assert start["type"] == "message_start"
    assert start["message_id"] != first["message_id"]
    assert start["parent_id"] == asked["message_id"]
    assert frames[-1]["type"] == "message_stop"

    old = await Message.objects.aget(pk=first["message_id"])
    new = await Message.objects.aget(pk=start["message_id"])
    assert (old.content, old.parent_id) == ("First.", asked["message_id"])
    assert (new.content, new.parent_id) == ("Second.", asked["message_id"])
    assert await _leaf(conversation) == new.pk
    # Upstream: the branch up to the question, not the reply it stands beside.
    assert _streamed(anthropic_server)[-1]["messages"] == [{"role": "user", "content": "Question"}]
    # Each attempt is recorded and billed on its own.
    calls = [
        u
        async for u in LlmUsage.objects.filter(
            message_id__in=[old.pk, new.pk], purpose="reply"
        ).order_by("id")
    ]
    assert [u.message_id for u in calls] == [old.pk, new.pk]
    assert all(u.coins_charged > 0 for u in calls)
    await tab.disconnect()


async def test_regenerate_any_reply_not_only_the_last_with_the_model_asked_for(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(
        text_reply(["One."]),
        text_reply(["Two."]),
        text_reply(["Other one."], model="claude-haiku-5-5"),
    )
    tab = await connect(alice, conversation)
    _, first, _ = await _exchange(tab, "Q1")
    second_question, _, _ = await _exchange(tab, "Q2")
    await send(tab, type="regenerate", message_id=first["message_id"], model="claude-haiku-5-5")
    frames = await until_end(tab)
    assert frames[0]["model"] == "claude-haiku-5-5"
    body = _streamed(anthropic_server)[-1]
    assert body["model"] == "claude-haiku-5-5"
    assert body["messages"] == [{"role": "user", "content": "Q1"}]
    # The later exchange is kept, on the branch through the first reply.
    kept = await Message.objects.aget(pk=second_question["message_id"])
    assert kept.parent_id == first["message_id"]
    assert await _leaf(conversation) == frames[0]["message_id"]
    await tab.disconnect()


async def test_edit_adds_a_sibling_message_and_a_reply_and_sends_the_new_branch(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["A1."]), text_reply(["A2."]), text_reply(["A2, edited."]))
    tab = await connect(alice, conversation)
    _, first, _ = await _exchange(tab, "Q1")
    asked, _, _ = await _exchange(tab, "Q2")
    await send(
        tab, type="edit", message_id=asked["message_id"], content="Q2, better", client_id="e-1"
    )
    frames = await until_end(tab)
    edited, start = frames[0], frames[1]
    assert edited["type"] == "user_message" and edited["client_id"] == "e-1"
    assert edited["parent_id"] == first["message_id"] and edited["content"] == "Q2, better"
    assert start["type"] == "message_start" and start["parent_id"] == edited["message_id"]
    assert _streamed(anthropic_server)[-1]["messages"] == [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1."},
        {"role": "user", "content": "Q2, better"},
    ]
    original = await Message.objects.aget(pk=asked["message_id"])
    assert (original.content, original.parent_id) == ("Q2", first["message_id"])
    assert await original.children.acount() == 1  # its reply is kept too
    assert await _leaf(conversation) == start["message_id"]

    # The same edit again (a resend after a reconnect) starts nothing new.
    await send(
        tab, type="edit", message_id=asked["message_id"], content="Q2, better", client_id="e-1"
    )
    again = await receive(tab)
    assert again["type"] == "user_message" and again["message_id"] == edited["message_id"]
    assert await Message.objects.filter(conversation=conversation).acount() == 6
    await tab.disconnect()


async def test_editing_the_first_message_starts_a_new_root(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["A."]), text_reply(["B."]))
    tab = await connect(alice, conversation)
    asked, _, _ = await _exchange(tab, "First try")
    await send(tab, type="edit", message_id=asked["message_id"], content="Second try")
    frames = await until_end(tab)
    assert frames[0]["parent_id"] is None
    assert _streamed(anthropic_server)[-1]["messages"] == [
        {"role": "user", "content": "Second try"}
    ]
    await tab.disconnect()


async def test_select_switches_every_tab_and_a_send_follows_the_selected_branch(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["Old."]), text_reply(["New."]), text_reply(["After old."]))
    tab = await connect(alice, conversation)
    asked, old, _ = await _exchange(tab, "Q")
    await send(tab, type="regenerate", message_id=old["message_id"])
    new = (await until_end(tab))[0]
    other = await connect(alice, conversation)
    caught_up = [await receive(other) for _ in range(3)]
    assert caught_up[-1] == {
        "type": "branch",
        "conversation_id": conversation.pk,
        "path": [asked["message_id"], new["message_id"]],
    }

    await send(tab, type="select", message_id=old["message_id"])
    path = [asked["message_id"], old["message_id"]]
    for socket in (tab, other):
        assert await receive(socket) == {
            "type": "branch",
            "conversation_id": conversation.pk,
            "path": path,
        }
    assert await _leaf(conversation) == old["message_id"]

    follow, _, _ = await _exchange(tab, "Go on")
    assert follow["parent_id"] == old["message_id"]
    assert _streamed(anthropic_server)[-1]["messages"] == [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "Old."},
        {"role": "user", "content": "Go on"},
    ]
    await tab.disconnect()
    await other.disconnect()


async def test_selecting_a_message_shows_its_latest_continuation(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["1."]), text_reply(["2."]), text_reply(["1 again."]))
    tab = await connect(alice, conversation)
    first_question, first, _ = await _exchange(tab, "Q1")
    second_question, second, _ = await _exchange(tab, "Q2")
    await send(tab, type="edit", message_id=first_question["message_id"], content="Q1 again")
    await until_end(tab)
    await send(tab, type="select", message_id=first_question["message_id"])
    branch = await receive(tab)
    assert branch["path"] == [
        first_question["message_id"],
        first["message_id"],
        second_question["message_id"],
        second["message_id"],
    ]
    await tab.disconnect()


async def test_a_retry_replaces_in_place_only_a_reply_nothing_follows(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["Cut"], error_after=1), text_reply(["Then."]))
    tab = await connect(alice, conversation)
    _, failed, end = await _exchange(tab, "Q1")
    assert end["type"] == "error"
    await _exchange(tab, "Q2")
    await send(tab, type="retry", message_id=failed["message_id"])
    refused = await receive(tab)
    assert refused["type"] == "error" and refused["code"] == "not_found"
    # Regenerate keeps it and adds a version beside it.
    anthropic_server.enqueue(text_reply(["Whole."]))
    await send(tab, type="regenerate", message_id=failed["message_id"])
    frames = await until_end(tab)
    assert frames[-1]["type"] == "message_stop"
    kept = await Message.objects.aget(pk=failed["message_id"])
    assert (kept.status, kept.content) == ("error", "Cut")
    await tab.disconnect()


async def test_regenerate_edit_and_select_refuse_what_is_not_this_conversations(
    alice: Any, bob: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["Mine."]))
    elsewhere = await Conversation.objects.acreate(owner=alice, model=CLAUDE)
    bobs = await Conversation.objects.acreate(owner=bob, model=CLAUDE)
    foreign = []
    for other in (elsewhere, bobs):
        question = await Message.objects.acreate(conversation=other, role="user", content="x")
        answer = await Message.objects.acreate(
            conversation=other, role="assistant", content="y", parent=question
        )
        foreign += [question.pk, answer.pk]
    tab = await connect(alice, conversation)
    asked, reply, _ = await _exchange(tab, "Mine")
    before = await Message.objects.acount()
    attempts: list[dict[str, Any]] = []
    for message_id in [*foreign, 10**12]:
        attempts += [
            {"type": "regenerate", "message_id": message_id},
            {"type": "edit", "message_id": message_id, "content": "z", "client_id": "c"},
            {"type": "select", "message_id": message_id},
            {"type": "send", "content": "z", "parent_id": message_id},
        ]
    # A reply is not edited, a person's message is not regenerated.
    attempts += [
        {"type": "edit", "message_id": reply["message_id"], "content": "z"},
        {"type": "regenerate", "message_id": asked["message_id"]},
    ]
    answers = []
    for attempt in attempts:
        await send(tab, **attempt)
        answers.append(await receive(tab))
    assert {(a["type"], a["code"]) for a in answers} == {("error", "not_found")}
    # Bob's ids (his message, his reply) are answered exactly as a missing one.
    missing = answers[16:20]
    assert answers[8:12] == missing and answers[12:16] == missing
    assert await Message.objects.acount() == before
    assert await _leaf(conversation) == reply["message_id"]
    await tab.disconnect()


async def test_an_edit_obeys_the_rules_of_a_send(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer, settings: Any
) -> None:
    anthropic_server.enqueue(text_reply(["A."]))
    tab = await connect(alice, conversation)
    asked, _, _ = await _exchange(tab, "Q")
    for content in ("", "   ", "x" * (settings.MESSAGE_MAX_CHARS + 1)):
        await send(
            tab, type="edit", message_id=asked["message_id"], content=content, client_id="e-9"
        )
        refused = await receive(tab)
        assert refused["code"] == "invalid_request" and refused["client_id"] == "e-9"
    await send(tab, type="edit", message_id=asked["message_id"], content="ok", extra=1)
    assert (await receive(tab))["code"] == "invalid_request"
    assert await Message.objects.filter(conversation=conversation).acount() == 2
    await tab.disconnect()


async def test_regenerate_and_edit_wait_for_the_reply_that_streams(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["Done."]), text_reply(["Slow ", "reply"], delay=0.5))
    tab = await connect(alice, conversation)
    asked, first, _ = await _exchange(tab, "Q")
    await send(tab, type="regenerate", message_id=first["message_id"])
    start = await receive(tab)
    assert start["type"] == "message_start"
    for attempt in (
        {"type": "regenerate", "message_id": first["message_id"]},
        {"type": "regenerate", "message_id": start["message_id"]},
        {"type": "edit", "message_id": asked["message_id"], "content": "Q!"},
    ):
        await send(tab, **attempt)
        while (frame := await receive(tab))["type"] != "error":
            pass
        assert "still being written" in frame["message"]
    # Switching branches while it streams is fine; the reply goes on.
    await send(tab, type="select", message_id=first["message_id"])
    frames = await until_end(tab)
    assert any(f["type"] == "branch" for f in frames)
    assert frames[-1]["type"] == "message_stop"
    saved = await database_sync_to_async(Message.objects.get)(pk=start["message_id"])
    assert saved.content == "Slow reply"
    await tab.disconnect()
