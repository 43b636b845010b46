"""The websocket consumer and reply runner, end to end against the fake Anthropic server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from billing.services import coins_adjust
from chat import runner
from chat.models import Conversation, Message
from tests.chat.helpers import (
    ClientView,
    connect,
    receive,
    router,
    send,
    signed_in_session,
    until_end,
)
from tests.fakes.anthropic import error_response, text_reply
from tests.fakes.sse_server import Chunk, Script, SSEServer

pytestmark = pytest.mark.django_db(transaction=True)

CLAUDE = "claude-sonnet-5-5"


@pytest.fixture
def conversation(alice: Any) -> Conversation:
    return Conversation.objects.create(owner=alice, model=CLAUDE)


async def message(pk: int) -> Message:
    return await Message.objects.aget(pk=pk)


async def test_frame_sequence_of_a_reply(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["Hello", ", ", "world", "!"], input_tokens=11))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Say hello", client_id="c-1")
    frames = await until_end(tab)
    kinds = [f["type"] for f in frames]
    assert kinds[:2] == ["user_message", "message_start"]
    assert kinds[-1] == "message_stop"
    assert set(kinds[2:-1]) == {"text_delta"}
    user, start, stop = frames[0], frames[1], frames[-1]
    assert user["content"] == "Say hello" and user["client_id"] == "c-1"
    assert start["model"] == CLAUDE and start["provider"] == "anthropic"
    assert start["byok"] is False and start["conversation_id"] == conversation.pk
    assert stop["stop_reason"] == "end_turn"
    assert stop["usage"] == {"input_tokens": 11, "output_tokens": 4}
    view = ClientView()
    for frame in frames:
        view.apply(frame)
    assert view.text[start["message_id"]] == "Hello, world!"
    saved = await message(start["message_id"])
    assert (saved.status, saved.content, saved.output_tokens) == ("complete", "Hello, world!", 4)
    await tab.disconnect()


async def test_first_delta_goes_out_at_once_and_later_ones_are_coalesced(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer, settings: Any
) -> None:
    settings.REPLY_FRAME_INTERVAL = 0.2
    anthropic_server.enqueue(text_reply([f"t{i} " for i in range(40)], delay=0.01))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="go")
    frames = await until_end(tab)
    deltas = [f for f in frames if f["type"] == "text_delta"]
    assert deltas[0]["text"] == "t0 "
    # 40 deltas over ~0.4 s with one frame per 0.2 s: a handful of frames, not 40.
    assert 2 <= len(deltas) <= 6
    assert "".join(d["text"] for d in deltas) == "".join(f"t{i} " for i in range(40))
    await tab.disconnect()


def _bursts(script: Script, size: int, gap: float) -> Script:
    """The script's text deltas written `size` at a time in one chunk, `gap` seconds apart, as
    real providers often batch several events into one write."""
    deltas = [c for c in script.chunks if b"text_delta" in c.payload()]
    first = script.chunks.index(deltas[0])
    grouped = [
        Chunk(b"".join(c.payload() for c in deltas[i : i + size]), gap)
        for i in range(0, len(deltas), size)
    ]
    rest = script.chunks[first + len(deltas) :]
    return Script(chunks=[*script.chunks[:first], *grouped, *rest])


async def test_deltas_read_together_go_out_as_one_frame(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    words = [f"w{i} " for i in range(12)]
    anthropic_server.enqueue(_bursts(text_reply(words), size=3, gap=0.1))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="go")
    deltas = [f for f in await until_end(tab) if f["type"] == "text_delta"]
    bursts = ["".join(words[i : i + 3]) for i in range(0, len(words), 3)]
    # No burst is split across frames, and none waits for the next: one frame per burst.
    assert [d["text"] for d in deltas] == bursts
    assert [d["offset"] for d in deltas] == [0, 9, 18, 27]
    await tab.disconnect()


async def test_deltas_read_apart_are_not_held_back(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    """By default a delta goes out as soon as the provider's stream pauses: at 50 events a
    second nearly every event is its own frame (a fixed window would pair them up)."""
    words = [f"w{i} " for i in range(20)]
    anthropic_server.enqueue(text_reply(words, delay=0.02))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="go")
    deltas = [f for f in await until_end(tab) if f["type"] == "text_delta"]
    assert "".join(d["text"] for d in deltas) == "".join(words)
    # A busy test machine may read two at once now and then; a window of 40 ms gives ~10.
    assert len(deltas) >= 16
    await tab.disconnect()


async def test_a_socket_refused_another_persons_conversation_is_sent_none_of_its_reply(
    alice: Any,
    bob: Any,
    conversation: Conversation,
    anthropic_server: SSEServer,
    monkeypatch: Any,
) -> None:
    """A socket joins the hub before the trip that admits it (frames sent meanwhile are held
    for it): one that is refused must lose what was held, not be sent it."""
    from chat import consumers

    admit = consumers._open

    def slow_admit(**kwargs: Any) -> Any:
        time.sleep(0.2)  # the reply streams on meanwhile: its frames are held for the socket
        return admit(**kwargs)

    monkeypatch.setattr(consumers, "_open", slow_admit)
    anthropic_server.enqueue(text_reply([f"secret{i} " for i in range(60)], delay=0.01))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Tell me a secret")
    assert (await receive(tab))["type"] == "user_message"
    intruder = WebsocketCommunicator(router, f"/ws/chat/{conversation.pk}/")
    intruder.scope["session"] = await database_sync_to_async(signed_in_session)(bob)
    connected, _ = await intruder.connect()
    assert connected  # accepted, then closed with the app's code
    assert await intruder.receive_output(timeout=3) == {"type": "websocket.close", "code": 4404}
    assert await intruder.receive_nothing(timeout=0.3)
    assert "secret39" in "".join(f.get("text", "") for f in await until_end(tab))
    await tab.disconnect()


async def test_second_tab_receives_the_same_text(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply([f"word{i} " for i in range(30)], delay=0.005))
    first, second = await connect(alice, conversation), await connect(alice, conversation)
    await send(first, type="send", content="Two tabs")
    frames_a, frames_b = await asyncio.gather(until_end(first), until_end(second))
    views = [ClientView(), ClientView()]
    for view, frames in zip(views, (frames_a, frames_b), strict=True):
        for frame in frames:
            view.apply(frame)
    message_id = frames_a[-1]["message_id"]
    expected = "".join(f"word{i} " for i in range(30))
    assert views[0].text[message_id] == views[1].text[message_id] == expected
    assert frames_b[0]["type"] == "user_message"  # the other tab sees the person's message too
    await first.disconnect()
    await second.disconnect()


async def test_a_socket_joining_mid_reply_gets_a_snapshot_and_ends_with_the_full_text(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    chunks = [f"part{i} " for i in range(60)]
    anthropic_server.enqueue(text_reply(chunks, delay=0.01))
    first = await connect(alice, conversation)
    await send(first, type="send", content="Long one")
    while (await receive(first))["type"] != "text_delta":
        pass
    await asyncio.sleep(0.1)
    late = await connect(alice, conversation)
    snapshot = await receive(late)
    assert snapshot["type"] == "message_snapshot" and snapshot["status"] == "streaming"
    # A tab rendered before the send was saved still learns the person's message.
    asked = await receive(late)
    assert asked["type"] == "user_message" and asked["content"] == "Long one"
    assert 0 < len(snapshot["content"]) < len("".join(chunks))
    view = ClientView()
    view.apply(snapshot)
    for frame in await until_end(late):
        view.apply(frame)
    assert view.text[snapshot["message_id"]] == "".join(chunks)
    assert view.gaps == 0
    await first.disconnect()
    await late.disconnect()


async def test_stop_closes_the_upstream_stream_and_keeps_the_partial_text(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply([f"tok{i} " for i in range(500)], delay=0.01))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Go on forever")
    view = ClientView()
    while (frame := await receive(tab))["type"] != "text_delta":
        view.apply(frame)
    view.apply(frame)
    stop_sent = time.monotonic()
    await send(tab, type="stop")
    loop = asyncio.get_running_loop()
    frames = await until_end(tab)
    recorded = await loop.run_in_executor(None, anthropic_server.wait_for_disconnect, 1.0)
    assert not recorded.completed
    # Invariant 5: the provider sees the stream closed within 300 ms of the stop.
    assert recorded.disconnected_at is not None
    assert recorded.disconnected_at - stop_sent < 0.3
    for frame in frames:
        view.apply(frame)
    stop = frames[-1]
    assert stop["type"] == "message_stop" and stop["stop_reason"] == "stopped"
    saved = await message(stop["message_id"])
    assert saved.status == "stopped"
    assert saved.content and saved.content == view.text[stop["message_id"]]
    assert "tok0 " in saved.content and "tok499" not in saved.content
    await tab.disconnect()


async def test_closing_the_only_socket_lets_the_reply_finish_and_be_saved(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    chunks = [f"c{i} " for i in range(50)]
    anthropic_server.enqueue(text_reply(chunks, delay=0.005))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Then I leave")
    start = None
    while start is None:
        frame = await receive(tab)
        if frame["type"] == "message_start":
            start = frame
    await tab.disconnect()
    await runner.wait_for_replies()
    saved = await message(start["message_id"])
    assert saved.status == "complete"
    assert saved.content == "".join(chunks)
    assert anthropic_server.requests[-1].completed


async def test_a_send_while_a_reply_streams_is_refused_clearly(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["slow "] * 50, delay=0.01))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="first")
    while (await receive(tab))["type"] != "message_start":
        pass
    await send(tab, type="send", content="second")
    while (frame := await receive(tab))["type"] != "error":
        pass
    assert frame["code"] == "invalid_request" and "still being written" in frame["message"]
    await send(tab, type="stop")
    await until_end(tab)
    assert await Message.objects.filter(content="second").acount() == 0
    await tab.disconnect()


async def test_the_same_client_id_twice_starts_one_reply(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["once"]))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="hi", client_id="same-id")
    await until_end(tab)
    await send(tab, type="send", content="hi", client_id="same-id")
    frame = await receive(tab)
    assert frame["type"] == "user_message" and frame["client_id"] == "same-id"
    assert await tab.receive_nothing(0.2)
    assert len(anthropic_server.requests) == 1
    assert await Message.objects.filter(conversation=conversation).acount() == 2
    await tab.disconnect()


async def test_history_goes_upstream_on_the_next_turn(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    await database_sync_to_async(coins_adjust)(
        user_id=alice.pk,
        amount=100_000,
        reason="room for a long reply",
        reference="t",
        created_by_id=None,
    )
    anthropic_server.enqueue(text_reply(["First answer."]), text_reply(["Second answer."]))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Question one")
    await until_end(tab)
    await send(tab, type="send", content="Question two", max_tokens=10**6)
    await until_end(tab)
    body = anthropic_server.requests[-1].body
    assert body["messages"] == [
        {"role": "user", "content": "Question one"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Question two"},
    ]
    assert body["max_tokens"] == 128_000  # the model's output limit, not what was asked
    await tab.disconnect()


async def test_error_mid_stream_keeps_the_partial_text_and_retry_regenerates(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(
        text_reply(["Partial ", "text"], error_after=2), text_reply(["Fresh ", "answer"])
    )
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Try")
    error = (await until_end(tab))[-1]
    assert error["type"] == "error" and error["code"] == "overloaded"
    assert error["partial_content"] == "Partial text"
    # It was billed for the text it wrote, and the tabs are told, as by `message_stop`.
    assert error["coins_charged"] >= 1 and error["provider"] == "anthropic"
    assert error["usage"]["output_tokens"] > 0 and not error["byok"]
    assert error["balance"] == 1000 - error["coins_charged"]
    saved = await message(error["message_id"])
    assert (saved.status, saved.content, saved.error_code) == (
        "error",
        "Partial text",
        "overloaded",
    )
    await send(tab, type="retry", message_id=error["message_id"])
    frames = await until_end(tab)
    view = ClientView()
    for frame in frames:
        view.apply(frame)
    assert frames[0]["type"] == "message_start" and frames[0]["message_id"] == error["message_id"]
    assert view.text[error["message_id"]] == "Fresh answer"
    assert (await message(error["message_id"])).status == "complete"
    await tab.disconnect()


async def test_a_retry_that_fails_before_any_output_keeps_the_earlier_text(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer, waits: list[float]
) -> None:
    anthropic_server.enqueue(text_reply(["Kept ", "text"], error_after=2))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Try")
    first = (await until_end(tab))[-1]
    anthropic_server.default = error_response(401, "authentication_error", "bad key")
    await send(tab, type="retry", message_id=first["message_id"])
    during = await Message.objects.aget(pk=first["message_id"])
    end = (await until_end(tab))[-1]
    assert end["type"] == "error" and end["code"] == "auth"
    saved = await message(first["message_id"])
    assert saved.content == "Kept text" and saved.status == "error"
    assert during.content == "Kept text"  # not blanked when the retry began
    await tab.disconnect()


async def test_the_demo_model_streams_offline(alice: Any) -> None:
    conversation = await Conversation.objects.acreate(owner=alice, model="demo")
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Hello demo, how are you today?")
    frames = await until_end(tab)
    view = ClientView()
    for frame in frames:
        view.apply(frame)
    stop = frames[-1]
    assert stop["type"] == "message_stop" and stop["provider"] == "demo"
    assert stop["usage"]["output_tokens"] > 50
    assert "Hello demo, how are you today?" in view.text[stop["message_id"]]
    await tab.disconnect()


async def test_an_unknown_model_is_refused_without_a_provider_call(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="hi", model="gpt-imaginary")
    frame = await receive(tab)
    assert frame["type"] == "error" and frame["code"] == "not_found"
    assert await Message.objects.acount() == 0 and anthropic_server.requests == []
    await tab.disconnect()


async def test_a_retired_model_is_refused_naming_its_successor(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    import providers.catalogue as catalogue

    class AfterRetirement(dt.date):
        @classmethod
        def today(cls) -> AfterRetirement:
            return cls(2026, 12, 1)

    monkeypatch.setattr(catalogue.dt, "date", AfterRetirement)
    conversation = await database_sync_to_async(Conversation.objects.create)(
        owner=alice, model="claude-sonnet-5-5"
    )
    tab = await connect(alice, conversation)
    # A page opened before the retirement still offers the model: the send names it.
    await send(tab, type="send", content="hi", model="claude-sonnet-4-5-20250929")
    frame = await receive(tab)
    assert frame["code"] == "not_found"
    assert "retired" in frame["message"] and "Claude Sonnet 5.5" in frame["message"]
    assert anthropic_server.requests == []
    await tab.disconnect()


@pytest.mark.optimisation
async def test_a_send_makes_one_trip_to_the_database_thread_before_its_reply(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer, database_trips: list[str]
) -> None:
    """Under load every trip waits for the database thread and for a turn of the busy event
    loop (bench/ttft.py), so a send makes one before the provider is called; nothing runs in
    that thread before each frame (channels' dispatch would close old connections there)."""
    from providers import model_sync

    await model_sync.areload()
    anthropic_server.enqueue(text_reply(["Hello", "!"]))
    tab = await connect(alice, conversation)
    database_trips.clear()
    await send(tab, type="send", content="Say hello", client_id="c-1")
    frames = await until_end(tab)
    assert frames[-1]["type"] == "message_stop"

    # (The socket's catch-up was read in its connect's one trip, before it was accepted.)
    assert database_trips[0] == "_begin", database_trips
    # (Channels' test communicator swaps close_old_connections for `no_op`.)
    assert not {"close_old_connections", "no_op"} & set(database_trips), database_trips
    await tab.disconnect()
