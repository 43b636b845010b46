"""Sockets on another worker get the reply through the channel layer (two hubs, one layer)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from chat import hub as hub_module
from chat.hub import Hub, get_hub
from chat.models import Conversation
from tests.chat.helpers import ClientView, connect, receive, send, until_end
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)


class RemoteTab:
    """A socket attached to the other worker's hub."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def push(self, text: str) -> None:
        self.frames.put_nowait(json.loads(text))

    async def until_end(self) -> list[dict[str, Any]]:
        out = []
        while True:
            frame = await asyncio.wait_for(self.frames.get(), 10)
            out.append(frame)
            if frame["type"] in ("message_stop", "error"):
                return out


async def test_a_tab_on_another_worker_streams_the_same_text(
    alice: Any, anthropic_server: SSEServer
) -> None:
    chunks = [f"far{i} " for i in range(60)]
    anthropic_server.enqueue(text_reply(chunks, delay=0.005))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    other_worker, remote = Hub(), RemoteTab()
    await other_worker.subscribe(remote, conversation.pk)
    local = await connect(alice, conversation)
    await send(local, type="send", content="across workers")
    remote_frames = await remote.until_end()
    await until_end(local)
    view = ClientView()
    for frame in remote_frames:
        view.apply(frame)
    assert remote_frames[0]["type"] == "user_message"
    assert view.text[remote_frames[-1]["message_id"]] == "".join(chunks)
    assert view.gaps == 0
    # Coalesced harder than local frames: far fewer messages than deltas.
    assert len([f for f in remote_frames if f["type"] == "text_delta"]) < 20
    await local.disconnect()
    await other_worker.unsubscribe(remote, conversation.pk)
    await other_worker.close()


async def test_a_slow_layer_send_is_not_overtaken_by_the_next_frames(
    alice: Any, anthropic_server: SSEServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.REPLY_REMOTE_INTERVAL = 0.02
    chunks = [f"slow{i} " for i in range(60)]
    anthropic_server.enqueue(text_reply(chunks, delay=0.005))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    other_worker, remote = Hub(), RemoteTab()
    await other_worker.subscribe(remote, conversation.pk)
    layer = other_worker.layer  # the one layer both hubs share
    real_send = layer.send
    delayed: list[dict[str, Any]] = []

    async def send_slowly_once(channel: str, message: dict[str, Any]) -> None:
        """The first two relays to the other worker (its snapshot, then the first frames after
        it) take 0.3 s on the way, as through a busy Redis."""
        if message["type"] == "relay.frames" and len(delayed) < 2:
            delayed.append(message)
            await asyncio.sleep(0.3)
        await real_send(channel, message)

    monkeypatch.setattr(layer, "send", send_slowly_once)
    local = await connect(alice, conversation)
    await send(local, type="send", content="in order, please")
    view = ClientView()
    for frame in await remote.until_end():
        view.apply(frame)
    assert delayed, "no frames were relayed"
    assert view.gaps == 0
    assert view.text[next(iter(view.text))] == "".join(chunks)
    await until_end(local)
    await local.disconnect()
    await other_worker.unsubscribe(remote, conversation.pk)
    await other_worker.close()


async def test_replies_watched_from_another_worker_share_one_layer_message_per_tick(
    alice: Any, anthropic_server: SSEServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through Redis a layer message costs 1.3-1.9 ms of CPU: the other worker gets one message
    per REPLY_REMOTE_INTERVAL with every reply it watches, not one per reply."""
    settings.REPLY_REMOTE_INTERVAL = 0.05
    texts = [[f"r{r}w{i} " for i in range(60)] for r in range(4)]
    for chunks in texts:
        anthropic_server.enqueue(text_reply(chunks, delay=0.005))
    conversations = [
        await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5") for _ in texts
    ]
    other_worker, tabs = Hub(), [RemoteTab() for _ in texts]
    for conversation, tab in zip(conversations, tabs, strict=True):
        await other_worker.subscribe(tab, conversation.pk)
    layer = other_worker.layer
    real_send = layer.send
    loop = asyncio.get_running_loop()
    relayed: list[tuple[float, set[int]]] = []

    async def noting_send(channel: str, message: dict[str, Any]) -> None:
        if channel == other_worker.channel and message["type"] == "relay.frames":
            relayed.append((loop.time(), {e["conversation"] for e in message["entries"]}))
        await real_send(channel, message)

    monkeypatch.setattr(layer, "send", noting_send)
    sockets = [await connect(alice, conversation) for conversation in conversations]
    for socket in sockets:
        await send(socket, type="send", content="all at once")
    seen: list[str] = []
    for tab in tabs:
        view = ClientView()
        for frame in await tab.until_end():
            view.apply(frame)
        assert view.gaps == 0
        seen.extend(view.text.values())
    # Which conversation's request got which scripted reply is up to the order they arrive.
    assert sorted(seen) == sorted("".join(chunks) for chunks in texts)
    for socket in sockets:
        await until_end(socket)
        await socket.disconnect()
    # At most one message per tick (ticks are at least the interval apart), and the replies
    # streamed together went together.
    span = relayed[-1][0] - relayed[0][0]
    assert len(relayed) <= span / settings.REPLY_REMOTE_INTERVAL + 1
    assert max(len(watched) for _, watched in relayed) > 1
    for conversation, tab in zip(conversations, tabs, strict=True):
        await other_worker.unsubscribe(tab, conversation.pk)
    await other_worker.close()


async def test_a_tab_on_another_worker_sees_the_reply_being_retried(
    alice: Any, anthropic_server: SSEServer, waits: list[float]
) -> None:
    # Overloaded before any text (late enough for the other worker to be watching by then).
    anthropic_server.enqueue(
        text_reply(["never"], error_after=0, delay=0.3), text_reply(["second ", "try"])
    )
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    other_worker, remote = Hub(), RemoteTab()
    await other_worker.subscribe(remote, conversation.pk)
    local = await connect(alice, conversation)
    await send(local, type="send", content="try again if you must")
    remote_frames = await remote.until_end()
    retrying = [f for f in remote_frames if f["type"] == "retrying"]
    assert [f["attempt"] for f in retrying] == [2]
    assert remote_frames[-1]["type"] == "message_stop"
    view = ClientView()
    for frame in remote_frames:
        view.apply(frame)
    assert view.text[remote_frames[-1]["message_id"]] == "second try"
    await until_end(local)
    await local.disconnect()
    await other_worker.unsubscribe(remote, conversation.pk)
    await other_worker.close()


async def test_a_tab_joining_on_another_worker_mid_reply_catches_up(
    alice: Any, anthropic_server: SSEServer
) -> None:
    chunks = [f"late{i} " for i in range(80)]
    anthropic_server.enqueue(text_reply(chunks, delay=0.005))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    local = await connect(alice, conversation)
    await send(local, type="send", content="join me later")
    while (await receive(local))["type"] != "text_delta":
        pass
    await asyncio.sleep(0.1)
    other_worker, remote = Hub(), RemoteTab()
    await other_worker.subscribe(remote, conversation.pk)
    view = ClientView()
    for frame in await remote.until_end():
        view.apply(frame)
    message_id = next(iter(view.text))
    assert view.text[message_id] == "".join(chunks)
    await until_end(local)
    await local.disconnect()
    await other_worker.close()


async def test_stop_from_another_worker_stops_the_reply(
    alice: Any, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply([f"x{i} " for i in range(500)], delay=0.01))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    other_worker, remote = Hub(), RemoteTab()
    await other_worker.subscribe(remote, conversation.pk)
    local = await connect(alice, conversation)
    await send(local, type="send", content="stop me from afar")
    while (await remote.frames.get())["type"] != "text_delta":
        pass
    await other_worker.stop(conversation.pk)
    end = (await until_end(local))[-1]
    assert end["type"] == "message_stop" and end["stop_reason"] == "stopped"
    loop = asyncio.get_running_loop()
    recorded = await loop.run_in_executor(None, anthropic_server.wait_for_disconnect, 1.0)
    assert not recorded.completed
    await local.disconnect()
    await other_worker.close()


async def test_a_reply_that_ends_before_the_other_worker_asks_to_watch_still_ends_there(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = ["quick ", "one"]
    anthropic_server.enqueue(text_reply(chunks))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    other_worker, remote = Hub(), RemoteTab()
    await other_worker.subscribe(remote, conversation.pk)
    layer = other_worker.layer
    real_send = layer.send
    watches: list[dict[str, Any]] = []

    async def watch_late(channel: str, message: dict[str, Any]) -> None:
        """The other worker's request to watch arrives after the reply has ended."""
        if message["type"] == "relay.watch":
            watches.append(message)
            await until_end(local)
        await real_send(channel, message)

    monkeypatch.setattr(layer, "send", watch_late)
    local = await connect(alice, conversation)
    await send(local, type="send", content="be quick")
    seen = []
    while True:
        frame = await asyncio.wait_for(remote.frames.get(), 10)
        seen.append(frame)
        if frame["type"] == "message_snapshot" and frame["status"] != "streaming":
            break
    assert watches, "the other worker never asked to watch"
    assert [f["type"] for f in seen[:2]] == ["user_message", "message_start"]
    assert seen[-1]["status"] == "complete"
    assert seen[-1]["content"] == "".join(chunks)
    assert seen[-1]["message_id"] == seen[1]["message_id"]
    await local.disconnect()
    await other_worker.unsubscribe(remote, conversation.pk)
    await other_worker.close()


async def test_a_tab_that_found_the_reply_streaming_as_it_ended_still_sees_the_end(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tab on another worker reads the reply as streaming from the database and asks every
    hub to watch it; the reply ends before the request arrives, so no hub answers."""
    monkeypatch.setattr(hub_module, "WATCH_RECHECK_AFTER", 0.2)
    chunks = [f"end{i} " for i in range(40)]
    anthropic_server.enqueue(text_reply(chunks, delay=0.01))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    local = await connect(alice, conversation)
    await send(local, type="send", content="finish while they ask")
    while (await receive(local))["type"] != "text_delta":
        pass
    layer = get_hub().layer
    real_group_send = layer.group_send
    late: list[dict[str, Any]] = []

    async def watch_after_the_end(group: str, message: dict[str, Any]) -> None:
        if message["type"] == "relay.watch" and not late:
            late.append(message)
            await until_end(local)
        await real_group_send(group, message)

    monkeypatch.setattr(layer, "group_send", watch_after_the_end)
    other_worker, remote = Hub(), RemoteTab()
    await other_worker.subscribe(remote, conversation.pk)
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != "message_snapshot" or seen[-1]["status"] == "streaming":
        seen.append(await asyncio.wait_for(remote.frames.get(), 10))
    assert late, "the other worker never asked to watch"
    assert seen[0]["type"] == "message_snapshot" and seen[0]["status"] == "streaming"
    assert seen[-1]["status"] == "complete"
    assert seen[-1]["content"] == "".join(chunks)
    await local.disconnect()
    await other_worker.unsubscribe(remote, conversation.pk)
    await other_worker.close()


async def test_the_provider_call_does_not_wait_for_the_other_workers_to_hear_of_it(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    anthropic_server.enqueue(text_reply(["not ", "held ", "up"]))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    local = await connect(alice, conversation)
    layer = get_hub().layer  # this worker's, which the consumer's replies use
    real_group_send = layer.group_send
    seen_by_then: list[int] = []
    announced = asyncio.Event()

    async def slow_group_send(group: str, message: dict[str, Any]) -> None:
        """Through a busy Redis the announcement takes a while: the request is out by then."""
        if message["type"] == "relay.started":
            for _ in range(200):
                if anthropic_server.requests:
                    break
                await asyncio.sleep(0.01)
            seen_by_then.append(len(anthropic_server.requests))
            announced.set()
        await real_group_send(group, message)

    monkeypatch.setattr(layer, "group_send", slow_group_send)
    await send(local, type="send", content="start at once")
    end = (await until_end(local))[-1]
    assert end["type"] == "message_stop"
    await asyncio.wait_for(announced.wait(), 5)
    assert seen_by_then == [1]
    await local.disconnect()


async def test_a_layer_that_fails_to_announce_the_reply_does_not_stop_it(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = ["still ", "here"]
    anthropic_server.enqueue(text_reply(chunks))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    local = await connect(alice, conversation)
    layer = get_hub().layer
    real_group_send = layer.group_send

    async def down_for_announcements(group: str, message: dict[str, Any]) -> None:
        if message["type"] == "relay.started":
            raise ConnectionError("the channel layer is down")
        await real_group_send(group, message)

    monkeypatch.setattr(layer, "group_send", down_for_announcements)
    await send(local, type="send", content="carry on")
    received = await until_end(local)
    view = ClientView()
    for frame in received:
        view.apply(frame)
    assert received[-1]["type"] == "message_stop"
    assert view.text[received[-1]["message_id"]] == "".join(chunks)
    await send(local, type="stop")  # the socket is still open and served
    await local.disconnect()
