"""The cross-worker relay: how a reply running in one worker process reaches tabs on others.

Each worker process has one hub with one channel on the channel layer (`hub.<random>`), and
every hub is in the group `chat.hubs`. Hubs find each other through the database, not through
a layer group per conversation (a group's add, send and discard through Redis would cost every
reply CPU even when no other worker watches it, docs/benchmarks.md): every open socket's row
names its hub and conversation (`OpenSocket`), and a streaming reply's row names the hub
running it (`Message.hub`). A reply that nobody watches on another worker makes no layer call
at all.

The messages, all on hubs' own channels but the last:

- `relay.started` {conversation, owner, frames}: a reply started on `owner`; sent only to the
  hubs with a socket on the conversation (found in the transaction that started it, which holds
  the conversation's row lock, so a socket opening meanwhile is either found or finds the reply
  streaming). Their tabs show the start frames and the hub asks to watch.
- `relay.watch` {conversation, hub, owner}: `hub` asks the reply's owner for its frames. The
  owner answers with a snapshot and then every frame that follows; if the reply has already
  ended, with its saved ending. A hub that gets no answer reads the database again, after
  WATCH_RECHECK_AFTER seconds and twice as long each time (the owner may have died: the sweep
  then ends the reply as interrupted).
- `relay.unwatch` {conversation, hub}: the last tab on `hub` left.
- `relay.frames` {owner, entries: [{conversation, frames, ended}]}: every
  REPLY_REMOTE_INTERVAL, one message per watching hub with what each reply it watches streamed
  meanwhile, in order (the layer's cost grows with the workers, not with the replies).
- `relay.announce` {conversation, owner, frames}: a frame for every tab (a new title).
- `relay.person` {user, frames}: a frame for every tab of a person, whatever it shows (the
  balance a reply or a title left; to the group: a conversation renamed or deleted).
- `relay.stop` {conversation}: Stop pressed in a tab on another worker.
- `relay.revoke` {user, session, code}, to the group: close a person's sockets everywhere (a
  sign-out, a new password, a disabled account).

A frame that arrives twice or out of step is harmless: the page drops what it has by offset
and asks for a fresh snapshot (reconnects) on a gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings

from chat import frames, limits, selectors
from chat.maintenance import swept_latest_exchange
from chat.relay_outbox import Outbox
from chatsite import metrics

if TYPE_CHECKING:
    from chat.hub import Hub, LiveReply

logger = logging.getLogger(__name__)

# Every hub is in this group: a sign-out or password change reaches the sockets on all workers.
HUBS_GROUP = "chat.hubs"

# A tab that found a reply streaming on another worker and got no word from its owner this
# long after asking reads the database again (then twice as long after, up to the maximum).
WATCH_RECHECK_AFTER = 1.0
WATCH_RECHECK_MAX = 30.0

# How often a hub's receive is cancelled again, once its listener is, until it ends.
RECEIVE_RECANCEL_EVERY = 0.05


class Relay:
    def __init__(self, hub: Hub, layer: Any = None) -> None:
        self.hub = hub
        self.layer = layer if layer is not None else get_channel_layer()
        self.channel = ""
        # Conversations whose reply runs on another worker: the owner hub's channel.
        self.following: dict[int, str] = {}
        # Bounds concurrent layer calls below the Redis pool's size (see settings).
        self._slots = asyncio.Semaphore(settings.LAYER_CONCURRENCY)
        self.outbox = Outbox(self)
        # Conversations whose tabs here asked every hub to watch a reply and got no answer yet.
        self._unanswered: dict[int, asyncio.Task[None]] = {}

    async def open(self) -> str:
        """This hub's channel, joined to every hub's group; its listener started."""
        channel = await self.layer.new_channel("hub.")
        await self.layer.group_add(HUBS_GROUP, channel)
        self.hub.spawn(self._listen(channel))
        return channel

    # --- watching a reply that runs elsewhere --------------------------------------------------

    async def ask_to_watch(self, conversation_id: int, owner: str) -> None:
        """The reply runs on another worker (`owner`, from its row): its hub answers with a
        fresh snapshot. Without an answer the database is read again until it tells the end."""
        await self._watch(conversation_id, owner)
        if conversation_id not in self._unanswered:
            task = self.hub.spawn(self._until_answered(conversation_id))
            self._unanswered[conversation_id] = task

    async def _until_answered(self, conversation_id: int) -> None:
        delay = WATCH_RECHECK_AFTER
        me = asyncio.current_task()

        def settled() -> bool:
            # An owner answered (`_answered`), the tabs left, or the reply now runs here.
            return (
                self._unanswered.get(conversation_id) is not me
                or not self.hub.local.showing(conversation_id)
                or conversation_id in self.hub.replies
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
                    self.hub.local.deliver(conversation_id, frames.snapshot_of(message))
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
        message = {
            "type": "relay.watch",
            "conversation": conversation_id,
            "hub": self.channel,
            "owner": owner,
        }
        await self.send(owner, message)

    def _answered(self, conversation_id: int) -> None:
        """An owner hub speaks for the conversation's reply: its rechecks stop at their next
        wake-up (not cancelled, which could cut a layer call short)."""
        self._unanswered.pop(conversation_id, None)

    async def unwatch(self, conversation_id: int) -> None:
        """The conversation's last tab here left: its owner stops sending its frames here."""
        owner = self.following.pop(conversation_id, None)
        if owner:
            message = {
                "type": "relay.unwatch",
                "conversation": conversation_id,
                "hub": self.channel,
            }
            await self.send(owner, message)

    # --- replies running here, watched elsewhere ------------------------------------------------

    async def announce_started(
        self, reply: LiveReply, start_frames: list[str], hubs: Iterable[str]
    ) -> None:
        message = {
            "type": "relay.started",
            "conversation": reply.conversation_id,
            "owner": self.channel,
            "frames": start_frames,
        }
        for hub in hubs:
            await self.send(hub, message)

    async def _send_saved_end(self, conversation_id: int, hub: str) -> None:
        _, message = await database_sync_to_async(selectors.latest_exchange)(
            conversation_id=conversation_id
        )
        if message is None:
            return
        entry = {
            "conversation": conversation_id,
            "frames": [frames.snapshot_of(message)],
            "ended": message.status != "streaming",
        }
        self.outbox.add(hub, entry)

    # --- frames for every tab, and Stop ----------------------------------------------------------

    async def announce(self, conversation_id: int, text: str) -> None:
        """Send one frame to the tabs on the conversation on every other worker."""
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
            await self.send(hub, message)

    async def tell_person(self, user_id: int, text: str, hubs: Iterable[str] | None) -> None:
        """Send one frame to the person's tabs on every other worker (`hubs`: those known to
        have one; None: looked up). A layer or database that is down costs those tabs the
        frame (a warning), never the caller its work."""
        try:
            if hubs is None:
                hubs = await database_sync_to_async(limits.hubs_with_person)(
                    user_id=user_id, besides=self.channel
                )
            message = {"type": "relay.person", "user": user_id, "frames": [text]}
            for hub in hubs:
                if hub != self.channel:
                    await self.send(hub, message)
        except Exception:
            logger.warning(
                "person %s's tabs on other workers were not told", user_id, exc_info=True
            )

    async def stop(self, conversation_id: int) -> None:
        """Stop the conversation's reply on the worker running it (its row names its hub)."""
        owner = await database_sync_to_async(selectors.reply_hub)(conversation_id=conversation_id)
        if owner and owner != self.channel:
            await self.send(owner, {"type": "relay.stop", "conversation": conversation_id})

    # --- the layer -----------------------------------------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> bool:
        try:
            async with self._slots:
                await self.layer.send(channel, message)
        except ChannelFull:
            logger.warning("relay channel full; that worker stops getting these frames")
            return False
        metrics.RELAY_MESSAGES.labels("sent", message.get("type", "")).inc()
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
        metrics.RELAY_MESSAGES.labels("received", message.get("type", "")).inc()
        local = self.hub.local
        match message.get("type"):
            case "relay.revoke":
                await local.close_people(message["user"], message.get("session"), message["code"])
                return
            case "relay.frames":
                for entry in message["entries"]:
                    self._on_frames(message["owner"], entry)
                return
            case "relay.person":
                local.tell(message["user"], message["frames"])
                return
        conversation_id = message.get("conversation")
        if not isinstance(conversation_id, int):
            return
        match message.get("type"):
            case "relay.started":
                owner = message["owner"]
                if owner == self.channel or not local.showing(conversation_id):
                    return
                self._answered(conversation_id)
                local.deliver_all(conversation_id, message["frames"])
                await self._watch(conversation_id, owner)
            case "relay.watch":
                reply = self.hub.replies.get(conversation_id)
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
                reply = self.hub.replies.get(conversation_id)
                if reply is not None:
                    reply.remote_watchers.discard(message["hub"])
            case "relay.announce":
                if message.get("owner") != self.channel:
                    local.deliver_all(conversation_id, message["frames"])
            case "relay.stop":
                reply = self.hub.replies.get(conversation_id)
                if reply is not None:
                    reply.stop()

    def _on_frames(self, owner: str, entry: dict[str, Any]) -> None:
        conversation_id = entry.get("conversation")
        if not isinstance(conversation_id, int):
            return
        self._answered(conversation_id)
        if entry.get("ended"):
            self.following.pop(conversation_id, None)
        elif self.hub.local.showing(conversation_id):
            self.following[conversation_id] = owner
        self.hub.local.deliver_all(conversation_id, entry["frames"])


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


async def tell_person_everywhere(*, user_id: int, text: str) -> None:
    """One frame for every tab of a person on every worker (a conversation renamed or deleted
    from a page's request), through the layer: no hub of the calling thread's loop is needed."""
    await get_channel_layer().group_send(
        HUBS_GROUP, {"type": "relay.person", "user": user_id, "frames": [text]}
    )


async def stop_on(*, hub: str, conversation_id: int) -> None:
    """Ask the hub running a conversation's reply to stop it (from a page's request)."""
    await get_channel_layer().send(hub, {"type": "relay.stop", "conversation": conversation_id})
