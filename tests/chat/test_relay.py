"""Sockets on another worker get the reply through the channel layer (two hubs, one layer)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection, connections, transaction

from chat import consumers, limits, selectors
from chat import relay as relay_module
from chat.hub import Hub, get_hub
from chat.maintenance import swept_latest_exchange
from chat.models import Conversation, Message
from tests.chat.helpers import ClientView, connect, receive, send, until_end
from tests.fakes.anthropic import message_response, text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)


class RemoteTab:
    """A socket attached to the other worker's hub (`show` opens it)."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        # Whose it is, set by `show` (the consumer's are).
        self.user_id: int | None = None
        self.session_key: str | None = None

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        pass

    def push(self, text: str) -> None:
        self.frames.put_nowait(json.loads(text))

    async def until_end(self) -> list[dict[str, Any]]:
        out = []
        while True:
            frame = await asyncio.wait_for(self.frames.get(), 10)
            out.append(frame)
            if frame["type"] in ("message_stop", "error"):
                return out


async def show(worker: Hub, tab: RemoteTab, person: Any, conversation: Conversation) -> None:
    """Open `tab` on `worker` as its consumer does: the socket's row (which names the worker's
    hub and the conversation), then the subscription."""
    await worker.start()
    await database_sync_to_async(limits.socket_open)(
        user_id=person.pk, hub=worker.channel, conversation_id=conversation.pk
    )
    tab.user_id = person.pk
    worker.track(tab)
    worker.join(tab, conversation.pk)
    exchange = await database_sync_to_async(swept_latest_exchange)(
        conversation_id=conversation.pk, sweep=worker.needs_sweep(conversation.pk)
    )
    await worker.catch_up(tab, conversation.pk, exchange)


async def test_a_tab_on_another_worker_streams_the_same_text(
    alice: Any, anthropic_server: SSEServer
) -> None:
    chunks = [f"far{i} " for i in range(60)]
    anthropic_server.enqueue(text_reply(chunks, delay=0.005))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    other_worker, remote = Hub(), RemoteTab()
    await show(other_worker, remote, alice, conversation)
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
    await other_worker.leave(remote, conversation.pk)
    await other_worker.close()


async def test_a_slow_layer_send_is_not_overtaken_by_the_next_frames(
    alice: Any, anthropic_server: SSEServer, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.REPLY_REMOTE_INTERVAL = 0.02
    chunks = [f"slow{i} " for i in range(60)]
    anthropic_server.enqueue(text_reply(chunks, delay=0.005))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    other_worker, remote = Hub(), RemoteTab()
    await show(other_worker, remote, alice, conversation)
    layer = other_worker.remote.layer  # the one layer both hubs share
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
    await other_worker.leave(remote, conversation.pk)
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
        await show(other_worker, tab, alice, conversation)
    layer = other_worker.remote.layer
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
        await other_worker.leave(tab, conversation.pk)
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
    await show(other_worker, remote, alice, conversation)
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
    await other_worker.leave(remote, conversation.pk)
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
    await show(other_worker, remote, alice, conversation)
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
    await show(other_worker, remote, alice, conversation)
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
    await show(other_worker, remote, alice, conversation)
    layer = other_worker.remote.layer
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
    await other_worker.leave(remote, conversation.pk)
    await other_worker.close()


async def test_a_tab_that_found_the_reply_streaming_as_it_ended_still_sees_the_end(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tab on another worker reads the reply as streaming from the database and asks every
    hub to watch it; the reply ends before the request arrives, so no hub answers."""
    monkeypatch.setattr(relay_module, "WATCH_RECHECK_AFTER", 0.2)
    chunks = [f"end{i} " for i in range(40)]
    anthropic_server.enqueue(text_reply(chunks, delay=0.01))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    local = await connect(alice, conversation)
    await send(local, type="send", content="finish while they ask")
    while (await receive(local))["type"] != "text_delta":
        pass
    layer = get_hub().remote.layer
    real_send = layer.send
    late: list[dict[str, Any]] = []

    async def watch_after_the_end(channel: str, message: dict[str, Any]) -> None:
        if message["type"] == "relay.watch" and not late:
            late.append(message)
            await until_end(local)
        await real_send(channel, message)

    monkeypatch.setattr(layer, "send", watch_after_the_end)
    other_worker, remote = Hub(), RemoteTab()
    await show(other_worker, remote, alice, conversation)
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != "message_snapshot" or seen[-1]["status"] == "streaming":
        seen.append(await asyncio.wait_for(remote.frames.get(), 10))
    assert late, "the other worker never asked to watch"
    assert seen[0]["type"] == "message_snapshot" and seen[0]["status"] == "streaming"
    assert seen[-1]["status"] == "complete"
    assert seen[-1]["content"] == "".join(chunks)
    await local.disconnect()
    await other_worker.leave(remote, conversation.pk)
    await other_worker.close()


async def test_the_conversation_s_title_reaches_a_tab_on_another_worker(
    alice: Any, anthropic_server: SSEServer, settings: Any
) -> None:
    settings.AUTO_TITLES = True
    anthropic_server.enqueue(
        text_reply(["Rye ", "works too."]), message_response("Baking With Rye")
    )
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    other_worker, remote = Hub(), RemoteTab()
    await show(other_worker, remote, alice, conversation)
    local = await connect(alice, conversation)
    await send(local, type="send", content="Can I bake with rye?")
    await until_end(local)
    # The title may overtake the reply's last frames (they wait for the relay's next tick).
    seen = await remote.until_end()
    while not any(f["type"] == "conversation_title" for f in seen):
        seen.append(await asyncio.wait_for(remote.frames.get(), 10))
    [title] = [f for f in seen if f["type"] == "conversation_title"]
    assert (title["conversation_id"], title["title"]) == (conversation.pk, "Baking With Rye")
    assert title["coins_charged"] >= 1 and title["model"] == "claude-haiku-5-5"
    await local.disconnect()
    await other_worker.close()


async def test_a_tab_on_another_worker_and_conversation_follows_the_balance(
    alice: Any, anthropic_server: SSEServer
) -> None:
    anthropic_server.enqueue(text_reply(["Paid ", "for."]))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    elsewhere = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    other_worker, remote = Hub(), RemoteTab()
    await show(other_worker, remote, alice, elsewhere)
    local = await connect(alice, conversation)
    await send(local, type="send", content="what does it cost?")
    end = (await until_end(local))[-1]
    frame = await asyncio.wait_for(remote.frames.get(), 10)
    assert frame == {"type": "balance", "balance": end["balance"]}
    assert end["coins_charged"] >= 1
    await local.disconnect()
    await other_worker.leave(remote, elsewhere.pk)
    await other_worker.close()


async def test_the_provider_call_does_not_wait_for_the_other_workers_to_hear_of_it(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    anthropic_server.enqueue(text_reply(["not ", "held ", "up"]))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    other_worker, remote = Hub(), RemoteTab()
    await show(other_worker, remote, alice, conversation)
    local = await connect(alice, conversation)
    layer = get_hub().remote.layer  # this worker's, which the consumer's replies use
    real_send = layer.send
    seen_by_then: list[int] = []
    announced = asyncio.Event()

    async def slow_send(channel: str, message: dict[str, Any]) -> None:
        """Through a busy Redis the announcement takes a while: the request is out by then."""
        if message["type"] == "relay.started":
            for _ in range(200):
                if anthropic_server.requests:
                    break
                await asyncio.sleep(0.01)
            seen_by_then.append(len(anthropic_server.requests))
            announced.set()
        await real_send(channel, message)

    monkeypatch.setattr(layer, "send", slow_send)
    await send(local, type="send", content="start at once")
    end = (await until_end(local))[-1]
    assert end["type"] == "message_stop"
    await asyncio.wait_for(announced.wait(), 5)
    assert seen_by_then == [1]
    await local.disconnect()
    await other_worker.close()


async def test_a_layer_that_fails_to_announce_the_reply_does_not_stop_it(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = ["still ", "here"]
    anthropic_server.enqueue(text_reply(chunks))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    other_worker, remote = Hub(), RemoteTab()
    await show(other_worker, remote, alice, conversation)
    local = await connect(alice, conversation)
    layer = get_hub().remote.layer
    real_send = layer.send
    announcements: list[str] = []

    async def down_for_announcements(channel: str, message: dict[str, Any]) -> None:
        if message["type"] == "relay.started":
            announcements.append(channel)
            raise ConnectionError("the channel layer is down")
        await real_send(channel, message)

    monkeypatch.setattr(layer, "send", down_for_announcements)
    await send(local, type="send", content="carry on")
    received = await until_end(local)
    view = ClientView()
    for frame in received:
        view.apply(frame)
    assert announcements == [other_worker.channel]
    assert received[-1]["type"] == "message_stop"
    assert view.text[received[-1]["message_id"]] == "".join(chunks)
    await send(local, type="stop")  # the socket is still open and served
    await local.disconnect()
    await other_worker.close()


async def test_a_reply_no_other_worker_shows_uses_no_channel_layer(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through Redis every layer call costs CPU on the worker (a group's add, send and discard
    cost a reply about 2 ms): a reply whose tabs are all on its own worker makes none."""
    anthropic_server.enqueue(text_reply(["all ", "at ", "home"]))
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    hub = get_hub()
    await hub.start()  # its one group (every hub's) is joined once, at start
    calls: list[str] = []
    for name in ("send", "group_send", "group_add", "group_discard"):
        real = getattr(hub.remote.layer, name)

        async def noted(*args: Any, _name: str = name, _real: Any = real) -> Any:
            calls.append(_name)
            return await _real(*args)

        monkeypatch.setattr(hub.remote.layer, name, noted)
    first, second = await connect(alice, conversation), await connect(alice, conversation)
    await send(first, type="send", content="stay here")
    for tab in (first, second):
        assert (await until_end(tab))[-1]["type"] == "message_stop"
    await send(first, type="stop")
    await first.disconnect()
    await second.disconnect()
    assert calls == []


async def test_a_tab_opening_elsewhere_while_a_reply_starts_waits_for_its_start_to_commit(
    alice: Any, anthropic_server: SSEServer
) -> None:
    """The socket's row and the reply's start exclude each other (the conversation's row lock,
    or SQLite's one writer): the reply's start finds the socket, or the socket finds the
    reply streaming. Here the start holds the lock; the socket's admission must wait for it."""
    if connection.vendor != "postgresql":
        # The test database's SQLite fails a second writer at once instead of making it wait.
        pytest.skip("needs PostgreSQL's row locks (runs in `make test-services`)")
    conversation = await Conversation.objects.acreate(owner=alice, model="claude-sonnet-5-5")
    holding, release = threading.Event(), threading.Event()

    def start_a_reply() -> None:
        with transaction.atomic():
            selectors.conversation_to_reply_in(
                owner_id=alice.pk, conversation_id=conversation.pk, lock=True
            )
            Message.objects.create(
                conversation=conversation, role="assistant", status="streaming", hub="hub.a!"
            )
            holding.set()
            release.wait(5)
        connections.close_all()

    def admit() -> tuple[bool, int | None, int | None]:
        try:
            return consumers._admit(user_id=alice.pk, conversation_id=conversation.pk, hub="hub.b!")
        finally:
            connections.close_all()

    loop = asyncio.get_running_loop()
    starting = loop.run_in_executor(None, start_a_reply)
    await loop.run_in_executor(None, holding.wait, 5)
    admitting = loop.run_in_executor(None, admit)
    await asyncio.sleep(0.3)
    assert not admitting.done(), "a socket was admitted while a reply's start was uncommitted"
    release.set()
    await starting
    owned, socket_id, _ = await asyncio.wait_for(admitting, 30)
    assert owned and socket_id is not None
    # Admitted after the start committed: the socket's catch-up finds the reply and its hub.
    hub = await database_sync_to_async(selectors.reply_hub)(conversation_id=conversation.pk)
    assert hub == "hub.a!"
