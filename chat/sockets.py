"""The sockets of this process: by conversation (to deliver frames) and by person (to close).

A frame goes straight to each socket's own queue (`push` never waits), so one slow tab holds up
no one. A socket that joins while the conversation streams holds its frames until it has been
sent what it joined to catch up with (`release`), so nothing sent meanwhile is missed and
nothing arrives older than what came before (the page drops overlap by offset).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from chatsite import metrics

logger = logging.getLogger(__name__)


class Subscriber(Protocol):
    def push(self, text: str) -> None:
        """Queue a frame for the socket; never waits (a congested socket holds up no one)."""


class PersonSocket(Subscriber, Protocol):
    """A socket that knows whose it is (the consumer), so signing out can close it."""

    user_id: int | None
    session_key: str | None

    async def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class LocalSockets:
    def __init__(self) -> None:
        self.by_conversation: dict[int, set[Subscriber]] = {}
        self.people: dict[int, set[PersonSocket]] = {}
        # Sockets being brought up to date hold their live frames until their snapshot is sent.
        self._catching_up: dict[Subscriber, list[str]] = {}

    def showing(self, conversation_id: int) -> bool:
        """Whether a socket of this process shows the conversation."""
        return conversation_id in self.by_conversation

    def join(self, socket: Subscriber, conversation_id: int) -> None:
        """Add a socket; the conversation's frames are held for it until `release`."""
        self._catching_up[socket] = []
        self.by_conversation.setdefault(conversation_id, set()).add(socket)

    def release(self, socket: Subscriber) -> None:
        """Send a joined socket the frames held for it; later ones go straight to it."""
        for text in self._catching_up.pop(socket, []):
            socket.push(text)

    def leave(self, socket: Subscriber, conversation_id: int) -> bool:
        """Remove a socket; True when it was the conversation's last one here."""
        sockets = self.by_conversation.get(conversation_id)
        if sockets is None:
            return False
        sockets.discard(socket)
        self._catching_up.pop(socket, None)
        if sockets:
            return False
        del self.by_conversation[conversation_id]
        return True

    def deliver(self, conversation_id: int, text: str) -> None:
        """Queue one frame for every socket of this process showing the conversation."""
        sockets = self.by_conversation.get(conversation_id)
        if not sockets:
            return
        for socket in tuple(sockets):
            held = self._catching_up.get(socket)
            if held is not None:
                held.append(text)
            else:
                socket.push(text)

    def deliver_all(self, conversation_id: int, texts: Iterable[str]) -> None:
        for text in texts:
            self.deliver(conversation_id, text)

    def tell(self, user_id: int, texts: Iterable[str], *, besides: int | None = None) -> None:
        """Queue frames for every socket of this process of the person, whatever it shows
        (but those showing conversation `besides`, which were told already)."""
        mine = self.people.get(user_id)
        if not mine:
            return
        told = self.by_conversation.get(besides, ()) if besides is not None else ()
        for text in texts:
            for socket in tuple(mine):
                if socket not in told:
                    socket.push(text)

    def track(self, socket: PersonSocket) -> None:
        if socket.user_id is not None:
            mine = self.people.setdefault(socket.user_id, set())
            if socket not in mine:
                mine.add(socket)
                metrics.OPEN_SOCKETS.inc()

    def untrack(self, socket: PersonSocket) -> None:
        if socket.user_id is None:
            return
        mine = self.people.get(socket.user_id)
        if mine is not None and socket in mine:
            mine.discard(socket)
            metrics.OPEN_SOCKETS.dec()
            if not mine:
                del self.people[socket.user_id]

    def session_keys(self) -> set[str]:
        """The sessions this process's sockets were opened with."""
        return {s.session_key for mine in self.people.values() for s in mine if s.session_key}

    async def close_sessions(self, session_keys: set[str], code: int) -> None:
        """Close this process's sockets opened with any of `session_keys`."""
        await self._close(
            [s for m in self.people.values() for s in m if s.session_key in session_keys], code
        )

    async def close_all(self, code: int) -> None:
        """Close every socket of this process (a worker shutting down)."""
        await self._close([s for mine in self.people.values() for s in mine], code)

    async def close_people(self, user_id: int, session_key: str | None, code: int) -> None:
        """Close this process's sockets of `user_id` (of one session, or all of them)."""
        mine = self.people.get(user_id, ())
        await self._close(
            [s for s in mine if session_key is None or s.session_key == session_key], code
        )

    async def _close(self, sockets: list[PersonSocket], code: int) -> None:
        for socket in sockets:
            self.untrack(socket)
            try:
                await socket.close(code=code)
            except Exception:
                logger.info("a socket could not be closed", exc_info=True)
