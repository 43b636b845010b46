"""Where frames go: sockets in this process directly, sockets on other workers through the layer.

Measured on this machine, a direct `send()` costs about 0.1 ms of CPU per frame, a message
through the in-memory layer 0.2-0.5 ms and through channels-redis about 0.8 ms (0.36 to send,
0.46 to receive, for one carrying 14 replies' frames). So every reply sends its deltas straight
to the sockets of its own process (this registry). Each worker process has one hub, with one
layer channel. Hubs find each other through the database, not through a
layer group per conversation (a group's add, send and discard cost a reply about 2 ms of CPU
through Redis): every socket's row names its hub and conversation, and a streaming reply's row
its hub. A reply that starts tells only the other hubs with sockets on its conversation (found
in the transaction that starts it, which holds the conversation's row lock, so a socket opening
meanwhile is either found or finds the reply); a socket that finds a reply streaming elsewhere
asks that reply's hub to watch it, and Stop goes to that hub. Only hubs that asked to watch get
the replies' text: every `REPLY_REMOTE_INTERVAL`, one message per watching hub carrying what
each reply it watches streamed meanwhile, so the layer's cost grows with the number of workers,
not with the number of replies watched. A reply nobody watches elsewhere uses no layer at all.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings

from chat import frames, limits, selectors, services
from chat.models import Message

logger = logging.getLogger(__name__)


class Subscriber(Protocol):
    def push(self, text: str) -> None:
        """Queue a frame for the socket; never waits (a congested socket holds up no one)."""


class PersonSocket(Subscriber, Protocol):
    """A socket that knows whose it is (the consumer), so signing out can close it."""

    user_id: int | None
    session_key: str | None

    async def close(self, code: int | None = None, reason: str | None = None) -> None: ...


# Every hub is in this group: a sign-out or password change reaches the sockets on all workers.
HUBS_GROUP = "chat.hubs"

# A tab that found a reply streaming on another worker and got no word from its owner this
# long after asking reads the database again (then twice as long after, up to the maximum).
WATCH_RECHECK_AFTER = 1.0
WATCH_RECHECK_MAX = 30.0


class LiveReply(Protocol):
    conversation_id: int
    message_id: int
    remote_watchers: set[str]

    def snapshot_frame(self) -> str: ...
    def take_remote_frames(self) -> list[str]: ...
    def add_remote_watcher(self, hub: str) -> None: ...
    def checkpoint_row(self, now: float) -> tuple[int, str, str] | None: ...
    def stop(self) -> None: ...


# Every reply running in this process, by message id, for the page's server-side render (read
# from view threads; only ever read there).
live_replies: dict[int, Any] = {}


class Hub:
    def __init__(self) -> None:
        self.sockets: dict[int, set[Subscriber]] = {}
        # This process's sockets by person, for revocation.
        self.people: dict[int, set[PersonSocket]] = {}
        # Sockets being brought up to date hold their live frames until their snapshot is sent.
        self._catching_up: dict[Subscriber, list[str]] = {}
        self.replies: dict[int, LiveReply] = {}
        # Conversations whose reply runs on another worker: the owner hub's channel.
        self.following: dict[int, str] = {}
        self.layer = get_channel_layer()
        self.channel = ""
        # Bounds concurrent layer calls below the Redis pool's size (see settings).
        self._slots = asyncio.Semaphore(settings.LAYER_CONCURRENCY)
        self._start_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._checkpointer: asyncio.Task[None] | None = None
        # Text for other workers' hubs: replies with text not yet taken, and what was taken (in
        # order, by watching hub) and not yet sent. One task sends it all, tick by tick.
        self._relay_pending: set[LiveReply] = set()
        self._outbox: dict[str, list[dict[str, Any]]] = {}
        self._relayer: asyncio.Task[None] | None = None
        # Conversations whose tabs here asked every hub to watch a reply and got no answer yet.
        self._unanswered: dict[int, asyncio.Task[None]] = {}

    async def start(self) -> None:
        if self.channel:
            return
        async with self._start_lock:
            if not self.channel:
                channel = await self.layer.new_channel("hub.")
                await self.layer.group_add(HUBS_GROUP, channel)
                self._spawn(self._listen(channel))
                self._spawn(self._sweep_loop())
                self.channel = channel

    async def close(self) -> None:
        """Stop this hub's tasks (a worker shutting down; tests)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- sockets of this process --------------------------------------------------------------

    async def subscribe(self, socket: Subscriber, conversation_id: int) -> None:
        """Add a socket and bring it up to date: the person's latest message, then the reply.

        The socket joins before anything is read, so no frame sent meanwhile is missed (the
        page drops what it already has by offset), and what it is sent last is never older
        than what it was sent before. (The consumer does the three steps itself, to read the
        exchange in the trip that admits the socket.)
        """
        await self.start()
        self.join(socket, conversation_id)
        try:
            exchange = await database_sync_to_async(swept_latest_exchange)(
                conversation_id=conversation_id,
                sweep=self.needs_sweep(conversation_id),
            )
        except BaseException:
            self._release(socket)
            raise
        await self.catch_up(socket, conversation_id, exchange)

    def join(self, socket: Subscriber, conversation_id: int) -> None:
        """Add a socket; the conversation's frames are held for it until `catch_up` (or
        `unsubscribe`)."""
        self._catching_up[socket] = []
        self.sockets.setdefault(conversation_id, set()).add(socket)

    def needs_sweep(self, conversation_id: int) -> bool:
        """Whether reading the conversation's latest exchange should end a reply whose process
        died (`swept_latest_exchange`): not if its reply runs here."""
        return conversation_id not in self.replies

    async def catch_up(
        self, socket: Subscriber, conversation_id: int, exchange: tuple[Any, Any]
    ) -> None:
        """Send a joined socket the latest exchange, read since it joined, then the frames held
        for it meanwhile (the page drops the overlap)."""
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
                socket.push(user_message_frame(asked))
        finally:
            self._release(socket)

    def _release(self, socket: Subscriber) -> None:
        """Send a joined socket the frames held for it; later ones go straight to it."""
        for text in self._catching_up.pop(socket, []):
            socket.push(text)

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
        socket.push(snapshot_from_row(message))
        if message.status == "streaming" and conversation_id not in self.replies:
            await self._ask_to_watch(conversation_id, message.hub)

    async def _ask_to_watch(self, conversation_id: int, owner: str) -> None:
        """Running on another worker (`owner`, from the reply's row): its hub answers with a
        fresh snapshot. If it does not answer (the reply ended before the request reached it,
        or its worker died), the database is read again until it tells the end."""
        await self._watch(conversation_id, owner)
        if conversation_id not in self._unanswered:
            self._unanswered[conversation_id] = self._spawn(self._until_answered(conversation_id))

    async def _until_answered(self, conversation_id: int) -> None:
        delay = WATCH_RECHECK_AFTER
        me = asyncio.current_task()

        def settled() -> bool:
            # An owner answered (`_answered`), the tabs left, or the reply now runs here.
            return (
                self._unanswered.get(conversation_id) is not me
                or conversation_id not in self.sockets
                or conversation_id in self.replies
            )

        try:
            while True:
                await asyncio.sleep(delay)
                if settled():
                    return
                # With `sweep`, a reply whose worker died is ended here, once it is stale.
                _, message = await database_sync_to_async(swept_latest_exchange)(
                    conversation_id=conversation_id, sweep=True
                )
                if message is None or settled():
                    return
                if message.status != "streaming":
                    self.deliver(conversation_id, snapshot_from_row(message))
                    return
                # Perhaps another hub's by now (a retry that started elsewhere).
                await self._watch(conversation_id, message.hub)
                delay = min(delay * 2, WATCH_RECHECK_MAX)
        except Exception:
            logger.exception(
                "could not find out how reply in conversation %s ended", conversation_id
            )
        finally:
            if self._unanswered.get(conversation_id) is me:
                del self._unanswered[conversation_id]

    async def _watch(self, conversation_id: int, owner: str) -> None:
        if not owner or owner == self.channel:
            return  # a reply of this hub's that is ending, or a row from before hubs were named
        self.following[conversation_id] = owner
        await self._send(
            owner,
            {
                "type": "relay.watch",
                "conversation": conversation_id,
                "hub": self.channel,
                "owner": owner,
            },
        )

    def _answered(self, conversation_id: int) -> None:
        """An owner hub speaks for the conversation's reply: its rechecks stop at their next
        wake-up (not cancelled, which could cut a layer call short)."""
        self._unanswered.pop(conversation_id, None)

    def track(self, socket: PersonSocket) -> None:
        if socket.user_id is not None:
            self.people.setdefault(socket.user_id, set()).add(socket)

    def untrack(self, socket: PersonSocket) -> None:
        if socket.user_id is None:
            return
        mine = self.people.get(socket.user_id)
        if mine is not None:
            mine.discard(socket)
            if not mine:
                del self.people[socket.user_id]

    async def _close_people(self, user_id: int, session_key: str | None, code: int) -> None:
        """Close this process's sockets of `user_id` (of one session, or all of them)."""
        for socket in tuple(self.people.get(user_id, ())):
            if session_key is None or socket.session_key == session_key:
                self.untrack(socket)
                try:
                    await socket.close(code=code)
                except Exception:
                    logger.info("a revoked socket could not be closed", exc_info=True)

    async def unsubscribe(self, socket: Subscriber, conversation_id: int) -> None:
        sockets = self.sockets.get(conversation_id)
        if sockets is None:
            return
        sockets.discard(socket)
        self._catching_up.pop(socket, None)
        if sockets:
            return
        del self.sockets[conversation_id]
        owner = self.following.pop(conversation_id, None)
        if owner:
            await self._send(
                owner,
                {"type": "relay.unwatch", "conversation": conversation_id, "hub": self.channel},
            )

    def deliver(self, conversation_id: int, text: str) -> None:
        """Queue one frame for every socket of this process watching the conversation."""
        sockets = self.sockets.get(conversation_id)
        if not sockets:
            return
        for socket in tuple(sockets):
            held = self._catching_up.get(socket)
            if held is not None:
                held.append(text)
            else:
                socket.push(text)

    # --- replies running in this process -------------------------------------------------------

    async def register(self, reply: LiveReply, start_frames: list[str]) -> None:
        await self.start()
        conversation_id = reply.conversation_id
        self.replies[conversation_id] = reply
        live_replies[reply.message_id] = reply
        self.following.pop(conversation_id, None)
        if self._checkpointer is None:
            self._checkpointer = self._spawn(self._checkpoint_loop())
        for text in start_frames:
            self.deliver(conversation_id, text)

    async def announce_started(
        self, reply: LiveReply, start_frames: list[str], hubs: Iterable[str]
    ) -> None:
        """Tell the other workers' hubs with tabs on the conversation (after `register`): their
        tabs show the start and ask to watch. The reply may have begun, or even ended,
        meanwhile (see `relay.watch`)."""
        message = {
            "type": "relay.started",
            "conversation": reply.conversation_id,
            "owner": self.channel,
            "frames": start_frames,
        }
        for hub in hubs:
            await self._send(hub, message)

    def unregister(self, reply: LiveReply) -> None:
        live_replies.pop(reply.message_id, None)
        if self.replies.get(reply.conversation_id) is reply:
            del self.replies[reply.conversation_id]

    def relay_pending(self, reply: LiveReply) -> None:
        """The reply streamed text its remote watchers have not had: taken at the next tick."""
        self._relay_pending.add(reply)
        self._start_relayer()

    def relay(
        self, reply: LiveReply, texts: list[str], *, ended: bool = False, to: str | None = None
    ) -> None:
        """Queue frames for the other workers' hubs that watch this reply (or for one of them),
        after whatever was queued for them before; the next tick sends them."""
        entry = {"conversation": reply.conversation_id, "frames": texts, "ended": ended}
        for hub in (to,) if to is not None else tuple(reply.remote_watchers):
            self._queue(hub, entry)

    def _queue(self, hub: str, entry: dict[str, Any]) -> None:
        self._outbox.setdefault(hub, []).append(entry)
        self._start_relayer()

    def _start_relayer(self) -> None:
        if self._relayer is None:
            self._relayer = self._spawn(self._relay_loop())

    async def _relay_loop(self) -> None:
        """Every REPLY_REMOTE_INTERVAL while there is text to relay: take every pending reply's
        new text, then send each watching hub one message with all of it. Only this task sends,
        one hub after another, so a hub gets every reply's frames in the order they were taken."""
        try:
            while self._relay_pending or self._outbox:
                await asyncio.sleep(settings.REPLY_REMOTE_INTERVAL)
                pending, self._relay_pending = self._relay_pending, set()
                for reply in pending:
                    texts = reply.take_remote_frames()
                    if texts:
                        self.relay(reply, texts)
                outbox, self._outbox = self._outbox, {}
                for hub, entries in outbox.items():
                    await self._send_entries(hub, entries)
        finally:
            self._relayer = None

    async def _send_entries(self, hub: str, entries: list[dict[str, Any]]) -> None:
        message = {"type": "relay.frames", "owner": self.channel, "entries": entries}
        try:
            if await self._send(hub, message):
                return
        except Exception:
            # The layer is down: that hub's tabs find the gap when frames come again and ask
            # for a fresh snapshot (a reconnect), so it stays a watcher.
            logger.exception("could not relay %d replies' frames to %s", len(entries), hub)
            return
        # Its channel is full (that worker is gone, or stuck): stop sending it these replies.
        for entry in entries:
            reply = self.replies.get(entry["conversation"])
            if reply is not None:
                reply.remote_watchers.discard(hub)

    async def announce(self, conversation_id: int, text: str) -> None:
        """Send one frame to every socket watching the conversation, on every worker."""
        await self.start()
        self.deliver(conversation_id, text)
        hubs = await database_sync_to_async(limits.hubs_showing)(
            conversation_id=conversation_id, besides=self.channel
        )
        message = {
            "type": "relay.announce",
            "conversation": conversation_id,
            "owner": self.channel,
            "frames": [text],
        }
        for hub in hubs:
            await self._send(hub, message)

    async def stop(self, conversation_id: int) -> None:
        """Stop the conversation's reply, wherever it runs (its row names its hub)."""
        reply = self.replies.get(conversation_id)
        if reply is not None:
            reply.stop()
            return
        owner = await database_sync_to_async(selectors.reply_hub)(conversation_id=conversation_id)
        if owner and owner != self.channel:
            await self._send(owner, {"type": "relay.stop", "conversation": conversation_id})

    # --- the layer -----------------------------------------------------------------------------

    async def _send(self, channel: str, message: dict[str, Any]) -> bool:
        try:
            async with self._slots:
                await self.layer.send(channel, message)
        except ChannelFull:
            logger.warning("relay channel full; that worker stops getting these frames")
            return False
        return True

    async def _listen(self, channel: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        # redis-py (and Python 3.11's asyncio.timeout) can turn a cancellation into its own
        # error and use up the cancel request, in a receive or in a layer call made while
        # handling a message: never carry on through one, or this task outlives its loop and
        # the loop's shutdown waits for it forever.
        while not task.cancelling():
            try:
                message = await _receive(self.layer, channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if task.cancelling() or _caused_by_cancel(exc):
                    break
                logger.exception("channel layer receive failed; retrying")
                await asyncio.sleep(1)
                continue
            try:
                await self._on_message(message)
            except Exception as exc:
                if task.cancelling() or _caused_by_cancel(exc):
                    break
                logger.exception("could not handle a relay message")
        raise asyncio.CancelledError()

    async def _on_message(self, message: dict[str, Any]) -> None:
        match message.get("type"):
            case "relay.revoke":
                await self._close_people(message["user"], message.get("session"), message["code"])
                return
            case "relay.frames":
                for entry in message["entries"]:
                    self._on_frames(message["owner"], entry)
                return
        conversation_id = message.get("conversation")
        if not isinstance(conversation_id, int):
            return
        match message.get("type"):
            case "relay.started":
                owner = message["owner"]
                if owner == self.channel or conversation_id not in self.sockets:
                    return
                self._answered(conversation_id)
                self._deliver_all(conversation_id, message["frames"])
                await self._watch(conversation_id, owner)
            case "relay.watch":
                reply = self.replies.get(conversation_id)
                hub = message["hub"]
                if hub == self.channel:
                    return
                if reply is not None:
                    reply.add_remote_watcher(hub)
                elif message.get("owner") == self.channel:
                    # Asked of this hub as the reply's owner, but the reply has ended already
                    # (an error at once, or a reply shorter than the round trip): its end is
                    # saved, and without it the other worker's tabs would wait for ever.
                    await self._send_saved_end(conversation_id, hub)
            case "relay.unwatch":
                reply = self.replies.get(conversation_id)
                if reply is not None:
                    reply.remote_watchers.discard(message["hub"])
            case "relay.announce":
                if message.get("owner") != self.channel:
                    self._deliver_all(conversation_id, message["frames"])
            case "relay.stop":
                reply = self.replies.get(conversation_id)
                if reply is not None:
                    reply.stop()

    def _on_frames(self, owner: str, entry: dict[str, Any]) -> None:
        conversation_id = entry.get("conversation")
        if not isinstance(conversation_id, int):
            return
        self._answered(conversation_id)
        if entry.get("ended"):
            self.following.pop(conversation_id, None)
        elif conversation_id in self.sockets:
            self.following[conversation_id] = owner
        self._deliver_all(conversation_id, entry["frames"])

    async def _send_saved_end(self, conversation_id: int, hub: str) -> None:
        _, message = await database_sync_to_async(selectors.latest_exchange)(
            conversation_id=conversation_id
        )
        if message is None:
            return
        entry = {
            "conversation": conversation_id,
            "frames": [snapshot_from_row(message)],
            "ended": message.status != "streaming",
        }
        self._queue(hub, entry)

    def _deliver_all(self, conversation_id: int, texts: Iterable[str]) -> None:
        for text in texts:
            self.deliver(conversation_id, text)

    # --- checkpoints and the sweep --------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        """End replies whose process died, within about REPLY_STALE_AFTER + this interval."""
        while True:
            await asyncio.sleep(settings.REPLY_SWEEP_INTERVAL)
            try:
                swept = await database_sync_to_async(services.replies_sweep_stale)()
            except Exception:
                logger.exception("sweep of stale replies failed")
                continue
            if swept:
                logger.warning("ended %d interrupted repl(ies): %s", len(swept), swept)
            try:
                await database_sync_to_async(self._renew_leases)()
            except Exception:
                logger.exception("could not renew this worker's socket leases")

    def _renew_leases(self) -> None:
        limits.sockets_renew(hub=self.channel)
        limits.windows_forget_old()

    async def _checkpoint_loop(self) -> None:
        """Save every live reply's partial text in one statement per tick, never per delta."""
        loop = asyncio.get_running_loop()
        try:
            while self.replies:
                await asyncio.sleep(settings.REPLY_CHECKPOINT_INTERVAL)
                now = loop.time()
                rows = [row for r in self.replies.values() if (row := r.checkpoint_row(now))]
                if rows:
                    try:
                        await database_sync_to_async(services.reply_checkpoint)(rows=rows)
                    except Exception:
                        logger.exception("checkpoint of %d replies failed", len(rows))
        finally:
            self._checkpointer = None


def swept_latest_exchange(*, conversation_id: int, sweep: bool) -> tuple[Any, Any]:
    """The latest exchange (in the database thread); with `sweep`, a reply whose process died
    is ended first (here at the latest, when someone looks). Only the latest reply
    can be streaming (one per conversation, and none starts after it while it streams), so the
    sweep is looked for only when it is."""
    asked, reply = selectors.latest_exchange(conversation_id=conversation_id)
    streaming = reply is not None and reply.status == Message.Status.STREAMING
    if sweep and streaming and services.replies_sweep_stale(conversation_id=conversation_id):
        asked, reply = selectors.latest_exchange(conversation_id=conversation_id)
    return asked, reply


def user_message_frame(message: Any) -> str:
    return frames.user_message(
        message_id=message.pk, content=message.content, client_id=message.client_id
    )


def snapshot_from_row(message: Any) -> str:
    return frames.message_snapshot(
        message_id=message.pk,
        content=message.content,
        thinking=message.thinking,
        status=message.status,
    )


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """This process's hub (one per event loop, so each test's loop gets a fresh one)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub


# How often a hub's receive is cancelled again, once its listener is, until it ends.
RECEIVE_RECANCEL_EVERY = 0.05


async def _receive(layer: Any, channel: str) -> dict[str, Any]:
    """The layer's next message for `channel`, received in a task of its own so that a
    cancellation it swallows does not keep the listener alive.

    It can swallow one outright: redis-py writes each command inside `asyncio.wait_for`, which
    on Python 3.11 returns normally when the cancel lands as the write completes, and
    channels-redis then blocks in BZPOPMIN again, five seconds at a time, for ever (a worker's
    shutdown, or a test's loop closing, waited on it). Here the listener stops waiting at once
    and cancels the receive again until it has ended (it swallows the cancel only in that
    instant of a write)."""
    receiving = asyncio.ensure_future(layer.receive(channel))
    try:
        return await asyncio.shield(receiving)
    except asyncio.CancelledError:
        while not receiving.done():
            receiving.cancel()
            await asyncio.wait({receiving}, timeout=RECEIVE_RECANCEL_EVERY)
        if not receiving.cancelled():
            receiving.exception()  # retrieved (a message or an error): the listener is ending
        raise


def _caused_by_cancel(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(20):  # exception chains are short; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, asyncio.CancelledError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def revoke_sockets(*, user_id: int, session_key: str | None, code: int) -> None:
    """Close a person's open sockets on every worker: one session's (a sign-out) or all of
    them (a password change, a deactivated account). Sent through the layer, so no hub of the
    calling thread's loop is needed."""
    await get_channel_layer().group_send(
        HUBS_GROUP,
        {"type": "relay.revoke", "user": user_id, "session": session_key, "code": code},
    )
