"""The websocket consumer: authenticate, validate frames, call the runner. No business logic."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, assert_never

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.utils import timezone

from chat import frames, limits, replies, selectors
from chat.frames import (
    Close,
    EditFrame,
    FrameError,
    RegenerateFrame,
    RetryFrame,
    SelectFrame,
    SendFrame,
    StopFrame,
)
from chat.hub import get_hub
from chat.maintenance import swept_exchange_and_tree
from chat.tree import path_to
from chatsite import metrics
from chatsite.accounts import session_expiry, session_user, signed_in_until

logger = logging.getLogger(__name__)

# Characters of frames a socket may have waiting before it counts as too slow: what was waiting
# is dropped and it is closed with Close.RESYNC once it takes frames again.
SOCKET_BACKLOG_LIMIT = 4_000_000
# A socket's session that could not be checked at its end is checked again this much later.
SESSION_RECHECK_AFTER = dt.timedelta(seconds=30)


@transaction.atomic
def _admit(*, user_id: int, conversation_id: int, hub: str) -> tuple[bool, int | None, int | None]:
    """Does the person own the conversation, the row of their new socket (None when they have
    too many open), and the end of the conversation's current branch. The conversation stays
    locked until the row is saved: a reply starting meanwhile finds this socket's hub
    (chat/hub.py)."""
    owned, leaf = selectors.owned_leaf(owner_id=user_id, conversation_id=conversation_id, lock=True)
    if not owned:
        return False, None, None
    socket_id = limits.socket_open(user_id=user_id, hub=hub, conversation_id=conversation_id)
    return True, socket_id, leaf


@dataclass(frozen=True, slots=True)
class _Opening:
    """What a socket's trip before it streams found."""

    user_id: int | None = None  # None: the session signs nobody in
    owned: bool = False  # the person owns the conversation
    socket_id: int | None = None  # None: not admitted (signed out, not theirs, too many open)
    exchange: tuple[Any, Any] = (None, None)  # the latest exchange, to catch the socket up
    branch: tuple[int, ...] = ()  # the conversation's current branch (message ids)
    expires_at: dt.datetime | None = None  # when the session ends


def _open(*, session: SessionBase, conversation_id: int, hub: str, sweep: bool) -> _Opening:
    """A socket's one trip to the database thread before it streams: who its session signs in
    (`session_user`: the session and the person), its admission (`_admit`) and, if it is
    admitted, the conversation's latest exchange and current branch to bring it up to date
    with (`maintenance.swept_exchange_and_tree`, read after the admission's transaction ended)."""
    user = session_user(session)
    if user is None:
        return _Opening()
    owned, socket_id, leaf = _admit(user_id=user.pk, conversation_id=conversation_id, hub=hub)
    if socket_id is None:
        return _Opening(user_id=user.pk, owned=owned)
    try:
        asked, reply, parents = swept_exchange_and_tree(
            conversation_id=conversation_id, sweep=sweep
        )
    except BaseException:
        # The socket is not opened after all: its row must not count against the person.
        limits.socket_close(socket_id=socket_id)
        raise
    return _Opening(
        user_id=user.pk,
        owned=True,
        socket_id=socket_id,
        exchange=(asked, reply),
        branch=tuple(path_to(parents, leaf)) if leaf in parents else (),
        expires_at=session_expiry(session),
    )


class ChatConsumer(AsyncWebsocketConsumer):
    # Frames reach sockets through the process's hub, which holds the only layer channel; a
    # channel per socket would cost memory and a layer receive loop for every idle socket.
    channel_layer_alias = "__hub_relays_instead__"

    conversation_id: int | None = None
    user_id: int | None = None
    session_key: str | None = None
    socket_id: int | None = None
    # Frames (and the close) waiting for this socket, in order, and the task sending them (both
    # only while there are some: an idle socket keeps neither).
    _outbox: deque[dict[str, Any]] | None = None
    _backlog = 0
    _writer: asyncio.Task[None] | None = None
    _done = False  # closed, too slow or gone: nothing more is queued
    # When the session ends (time.monotonic()), and the timer that closes the socket then.
    _session_ends = math.inf
    _session_timer: asyncio.TimerHandle | None = None
    _session_check: asyncio.Task[bool] | None = None
    # The frames this socket may still send at once, and when that was last worked out.
    _frame_allowance = 0.0
    _frame_counted = 0.0

    # --- sending: queued, so one slow reader holds up no one ------------------------------------

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        """Queue a frame and return at once. With uvicorn a send waits while the client's
        connection is congested; awaited in line, one tab on a bad network would hold up the
        reply it watches (its other tabs, its settle) and, on the relay, every reply another
        worker sends this one."""
        if text_data is not None:
            self._queue({"type": "websocket.send", "text": text_data}, len(text_data))
        elif bytes_data is not None:
            self._queue({"type": "websocket.send", "bytes": bytes_data}, len(bytes_data))
        else:
            raise ValueError("You must pass one of bytes_data or text_data")
        if close:
            await self.close(close)

    def push(self, text: str) -> None:
        """A frame from the hub: queued behind this socket's earlier frames."""
        self._queue({"type": "websocket.send", "text": text}, len(text))

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Queued after the frames before it (a refusal's reason arrives before its close)."""
        message: dict[str, Any] = {"type": "websocket.close"}
        if code is not None and code is not True:
            message["code"] = int(code)  # a plain int for the server (daphne refuses others)
        if reason:
            message["reason"] = reason
        self._queue(message, 0)
        self._done = True

    def _queue(self, message: dict[str, Any], size: int) -> None:
        if self._done:
            return
        if self._outbox is None:
            self._outbox = deque()
        self._outbox.append(message)
        self._backlog += size
        if self._backlog > SOCKET_BACKLOG_LIMIT:
            logger.info("a socket fell %d characters behind: closing it to resync", self._backlog)
            metrics.SOCKETS_LAGGING.inc()
            self._outbox.clear()
            self._backlog = 0
            self._outbox.append({"type": "websocket.close", "code": int(Close.RESYNC)})
            self._done = True
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write(self._outbox))

    async def _write(self, outbox: deque[dict[str, Any]]) -> None:
        try:
            while outbox:
                message = outbox.popleft()
                self._backlog -= len(message.get("text") or message.get("bytes") or "")
                await self.base_send(message)
        except Exception:
            # Never left open and deaf: closed, the page reconnects and is caught up (if the
            # connection itself is gone, the close fails too and the server ends the socket).
            logger.info("closing a socket that a frame could not be sent to", exc_info=True)
            outbox.clear()
            self._done = True
            with contextlib.suppress(Exception):
                await self.base_send({"type": "websocket.close", "code": int(Close.RESYNC)})
        finally:
            self._writer = None
            self._outbox = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch first runs `close_old_connections` in the database thread, a
        # round trip before every frame (under load, several ms before a send even starts).
        # Every database call here goes through `database_sync_to_async`, which already
        # closes old connections before and after the call. This socket has no channel layer,
        # so its messages are only the server's `websocket.*` ones.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # Channels' own also runs `aclose_old_connections` in the database thread, one more
        # round trip for every socket that closes; `disconnect` makes its trip through
        # `database_sync_to_async`, which closes old connections itself.
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def connect(self) -> None:
        # Refusals accept first, then close with the app's code: a socket closed before it is
        # accepted reaches the browser as a failed handshake (1006), and the page could not
        # tell "log in again" (4401) from "gone" (4404) from a network error.
        session = self.scope.get("session")
        if session is None:
            await self._refuse(Close.SIGNED_OUT)
            return
        conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        hub = get_hub()
        await hub.start()
        # Joined first, so no frame of the conversation sent while the trip reads its latest
        # exchange is missed (`Hub.join`): one trip reads the session and its
        # person, admits the socket and reads the exchange.
        hub.join(self, conversation_id)
        opening = _Opening()
        try:
            opening = await database_sync_to_async(_open)(
                session=session,
                conversation_id=conversation_id,
                hub=hub.channel,
                sweep=hub.needs_sweep(conversation_id),
            )
            self.socket_id = opening.socket_id  # its row goes with it (`disconnect`)
        finally:
            if opening.socket_id is None:
                await hub.leave(self, conversation_id)
        if opening.user_id is None:
            await self._refuse(Close.SIGNED_OUT)
            return
        if not opening.owned:
            await self._refuse(Close.NOT_FOUND)
            return
        await self.accept()
        if opening.socket_id is None:
            await self._send_error(
                "rate_limited",
                f"Too many open chat tabs (at most {settings.SOCKETS_PER_PERSON}). "
                "Close some, then reload this one.",
            )
            await self.close(code=Close.TOO_MANY_SOCKETS)
            return
        self.user_id = opening.user_id
        self.session_key = session.session_key
        self.conversation_id = conversation_id
        hub.track(self)
        self._frame_allowance, self._frame_counted = settings.SOCKET_FRAME_BURST, time.monotonic()
        self._watch_session(opening.expires_at)
        await hub.catch_up(self, conversation_id, opening.exchange, opening.branch)

    # --- the session's end: the socket goes with it ---------------------------------------------

    def _watch_session(self, expires_at: dt.datetime | None) -> None:
        """Close the socket when its session ends (checked again then: a page may have
        extended it)."""
        left = 0.0 if expires_at is None else (expires_at - timezone.now()).total_seconds()
        self._session_ends = time.monotonic() + max(0.0, left)
        loop = asyncio.get_running_loop()
        self._session_timer = loop.call_later(max(0.0, left) + 0.05, self._session_due)

    def _session_due(self) -> None:
        self._session_timer = None
        if not self._done and self._session_check is None:
            check = asyncio.get_running_loop().create_task(self._session_valid())
            self._session_check = check
            check.add_done_callback(self._session_checked)

    def _session_checked(self, check: asyncio.Task[bool]) -> None:
        self._session_check = None
        if not check.cancelled() and check.exception() is not None:
            logger.error("checking a socket's session failed", exc_info=check.exception())

    async def _session_valid(self) -> bool:
        """Whether the socket's session still signs its person in; if not, the socket is closed
        with Close.SIGNED_OUT (the page asks them to log in again)."""
        try:
            until = await database_sync_to_async(signed_in_until)(
                user_id=self.user_id, session_key=self.session_key
            )
        except Exception:
            # The database cannot say now: looked at again shortly (paid actions re-check).
            logger.warning("could not check a socket's session", exc_info=True)
            until = timezone.now() + SESSION_RECHECK_AFTER
        if self._done:
            return False
        if until is None or until <= timezone.now():
            logger.info("a socket's session ended: closing it")
            await self.close(code=Close.SIGNED_OUT)
            return False
        if self._session_timer is not None:
            self._session_timer.cancel()
        self._watch_session(until)
        return True

    async def disconnect(self, code: int) -> None:
        self._done = True
        if self._session_timer is not None:
            self._session_timer.cancel()
        if self._session_check is not None:
            self._session_check.cancel()
        if self._outbox is not None:
            self._outbox.clear()
        get_hub().untrack(self)
        if self.socket_id is not None:
            await database_sync_to_async(limits.socket_close)(socket_id=self.socket_id)
            self.socket_id = None
        if self.conversation_id is not None:
            await get_hub().leave(self, self.conversation_id)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.conversation_id is None or self.user_id is None or self._done:
            return
        if self._flooding():
            logger.warning("person %s's socket sent too many frames: closing it", self.user_id)
            await self._send_error(
                "rate_limited",
                "This tab sent more messages than a chat page does; it reconnects in a moment.",
            )
            await self.close(code=Close.TOO_MANY_FRAMES)
            return
        if time.monotonic() >= self._session_ends and not await self._session_valid():
            return  # its session ended since the timer last looked: nothing it asks is done
        try:
            frame = frames.parse_client_frame(text_data, bytes_data)
        except FrameError as exc:
            await self._send_error("invalid_request", str(exc), client_id=exc.client_id)
            return
        try:
            await self._handle(frame)
        except replies.Refused as refused:
            client_id = frame.client_id if isinstance(frame, (SendFrame, EditFrame)) else None
            await self.send(text_data=refused.frame(client_id=client_id))
            if refused.signed_out:
                await self.close(code=Close.SIGNED_OUT)

    def _flooding(self) -> bool:
        """Counts a frame against the socket's budget (a token bucket); True once it is spent."""
        now = time.monotonic()
        earned = (now - self._frame_counted) * settings.SOCKET_FRAMES_PER_SECOND
        self._frame_allowance = min(settings.SOCKET_FRAME_BURST, self._frame_allowance + earned)
        self._frame_counted = now
        if self._frame_allowance < 1:
            return True
        self._frame_allowance -= 1
        return False

    async def _handle(self, frame: Any) -> None:
        assert self.conversation_id is not None and self.user_id is not None
        # Paid actions (send, edit, regenerate, retry) re-check the person (signed out, new
        # password, account disabled) and count against the per-minute limit before anything
        # is written.
        match frame:
            case SendFrame() | EditFrame() | RegenerateFrame() | RetryFrame():
                for text in await replies.start_reply(
                    user_id=self.user_id,
                    session_key=self.session_key,
                    conversation_id=self.conversation_id,
                    frame=frame,
                ):
                    await self.send(text_data=text)
            case StopFrame():
                await get_hub().stop(self.conversation_id)
            case SelectFrame(message_id=message_id):
                await replies.select_branch(
                    user_id=self.user_id,
                    conversation_id=self.conversation_id,
                    message_id=message_id,
                )
            case _:
                assert_never(frame)

    async def _refuse(self, code: int) -> None:
        await self.accept()
        await self.close(code=code)

    async def _send_error(self, code: str, message: str, *, client_id: str | None = None) -> None:
        await self.send(
            text_data=frames.error(code=code, message=message, retryable=False, client_id=client_id)
        )


class NoSuchSocket(AsyncWebsocketConsumer):
    """A socket to a path that names no conversation: refused as a missing one (the page shows
    "gone"), accepted first so the browser sees the code, as every refusal here."""

    channel_layer_alias = "__refusals_need_no_layer__"

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=int(Close.NOT_FOUND))
