"""Where frames go: sockets in this process directly, sockets on other workers through the relay.

A direct `push` costs a frame far less CPU than a message through the channel layer
(docs/benchmarks.md), so every reply sends its deltas straight to the sockets of its own
process (`chat/sockets.py`); other workers get them only if one of their tabs watches the reply
(`chat/relay.py`, which documents the protocol between workers). Each worker process has one
hub per event loop: its sockets, the replies it runs, its relay and its housekeeping
(`chat/maintenance.py`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

from channels.db import database_sync_to_async

from chat import frames, selectors, shutdown
from chat.maintenance import checkpoint_loop, sweep_loop
from chat.relay import Relay
from chat.sockets import LocalSockets, PersonSocket, Subscriber


class LiveReply(Protocol):
    conversation_id: int
    message_id: int
    remote_watchers: set[str]

    def snapshot_frame(self) -> str: ...
    def take_remote_frames(self) -> list[str]: ...
    def add_remote_watcher(self, hub: str) -> None: ...
    def checkpoint_row(self, now: float) -> tuple[int, str, str] | None: ...

    # The task running the reply (None until it is launched).
    task: asyncio.Task[None] | None

    def peek(self) -> tuple[str, str]: ...
    def peek_tools(self) -> list[dict[str, Any]] | None: ...
    def stop(self) -> None: ...
    def interrupt(self) -> None: ...


# Every reply running in this process, by message id, for the page's server-side render (read
# from view threads; only ever read there).
live_replies: dict[int, LiveReply] = {}


class Hub:
    def __init__(self, *, layer: Any = None) -> None:
        self.local = LocalSockets()
        # The replies running in this process, by conversation (one at a time in each).
        self.replies: dict[int, LiveReply] = {}
        self.remote = Relay(self, layer)
        self._start_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._checkpointer: asyncio.Task[None] | None = None

    @property
    def channel(self) -> str:
        """This hub's channel on the layer ("" until `start`)."""
        return self.remote.channel

    async def start(self) -> None:
        if self.channel:
            return
        async with self._start_lock:
            if not self.channel:
                channel = await self.remote.open()
                self.spawn(sweep_loop(self))
                self.remote.channel = channel
                shutdown.install(self)

    async def close(self) -> None:
        """Stop this hub's tasks (a worker shutting down; tests)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- sockets -------------------------------------------------------------------------------

    def join(self, socket: Subscriber, conversation_id: int) -> None:
        """Add a socket before its catch-up is read: frames sent meanwhile are held for it
        until `catch_up` (or `leave`), so none is missed."""
        self.local.join(socket, conversation_id)

    def needs_sweep(self, conversation_id: int) -> bool:
        """Whether reading the conversation's latest exchange should end a reply whose process
        died (`maintenance.swept_latest_exchange`): not if its reply runs here."""
        return conversation_id not in self.replies

    async def catch_up(
        self,
        socket: Subscriber,
        conversation_id: int,
        exchange: tuple[Any, Any],
        branch: tuple[int, ...] = (),
    ) -> None:
        """Send a joined socket the latest exchange and the current branch, read since it
        joined, then the frames held for it meanwhile (the page drops the overlap)."""
        asked, message = exchange
        try:
            reply = self.replies.get(conversation_id)
            if reply is not None:
                socket.push(reply.snapshot_frame())
            else:
                await self._snapshot_from_database(socket, conversation_id, message)
            # The page may have been rendered before the latest message was saved (a reload
            # right after a send): it places the person's message before the reply, by id.
            if asked is not None:
                socket.push(frames.user_message_of(asked))
            if branch:
                # A tab that missed a switch (or messages) while it was away follows it now.
                socket.push(frames.branch(conversation_id=conversation_id, path=list(branch)))
        finally:
            self.local.release(socket)

    async def _snapshot_from_database(
        self, socket: Subscriber, conversation_id: int, message: Any
    ) -> None:
        if message is not None and message.status == "streaming":
            # Not running here (any more): a local reply unregisters only after its final
            # save, so reading again now sees its ending if it ended while we read.
            _, message = await database_sync_to_async(selectors.latest_exchange)(
                conversation_id=conversation_id
            )
        if message is None:
            return
        socket.push(frames.snapshot_of(message))
        if message.status == "streaming" and conversation_id not in self.replies:
            await self.remote.ask_to_watch(conversation_id, message.hub)

    def track(self, socket: PersonSocket) -> None:
        self.local.track(socket)

    def untrack(self, socket: PersonSocket) -> None:
        self.local.untrack(socket)

    async def leave(self, socket: Subscriber, conversation_id: int) -> None:
        if self.local.leave(socket, conversation_id):
            await self.remote.unwatch(conversation_id)

    def deliver(self, conversation_id: int, text: str) -> None:
        """Queue one frame for every socket of this process showing the conversation."""
        self.local.deliver(conversation_id, text)

    # --- replies running in this process -------------------------------------------------------

    async def register(self, reply: LiveReply, start_frames: list[str]) -> None:
        await self.start()
        conversation_id = reply.conversation_id
        self.replies[conversation_id] = reply
        live_replies[reply.message_id] = reply
        self.remote.following.pop(conversation_id, None)
        if self._checkpointer is None:
            self._checkpointer = self.spawn(self._checkpoint())
        self.local.deliver_all(conversation_id, start_frames)

    async def _checkpoint(self) -> None:
        try:
            await checkpoint_loop(self)
        finally:
            self._checkpointer = None

    async def announce_started(
        self, reply: LiveReply, start_frames: list[str], hubs: Iterable[str]
    ) -> None:
        """Tell the other workers' hubs with tabs on the conversation (after `register`): their
        tabs show the start and ask to watch. The reply may have begun, or even ended,
        meanwhile (the relay's `relay.watch`)."""
        await self.remote.announce_started(reply, start_frames, hubs)

    def unregister(self, reply: LiveReply) -> None:
        live_replies.pop(reply.message_id, None)
        if self.replies.get(reply.conversation_id) is reply:
            del self.replies[reply.conversation_id]

    def relay_pending(self, reply: LiveReply) -> None:
        """The reply streamed text its remote watchers have not had: sent at the next tick."""
        self.remote.outbox.pending(reply)

    def relay(
        self, reply: LiveReply, texts: list[str], *, ended: bool = False, to: str | None = None
    ) -> None:
        """Queue frames for the other workers' hubs that watch this reply (or for one)."""
        self.remote.outbox.queue(reply, texts, ended=ended, to=to)

    async def announce(self, conversation_id: int, text: str) -> None:
        """Send one frame to every socket watching the conversation, on every worker."""
        await self.start()
        self.deliver(conversation_id, text)
        await self.remote.announce(conversation_id, text)

    async def tell_person(
        self,
        user_id: int,
        text: str,
        *,
        hubs: Iterable[str] | None = None,
        besides: int | None = None,
    ) -> None:
        """Send one frame to every socket of the person, on every worker: `hubs` are the other
        workers known to have one (None: looked up now); this process's sockets showing
        conversation `besides` were told already."""
        await self.start()
        self.local.tell(user_id, [text], besides=besides)
        await self.remote.tell_person(user_id, text, hubs)

    async def stop(self, conversation_id: int) -> None:
        """Stop the conversation's reply, wherever it runs."""
        reply = self.replies.get(conversation_id)
        if reply is not None:
            reply.stop()
            return
        await self.remote.stop(conversation_id)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """This process's hub (one per event loop, so each test's loop gets a fresh one)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub
