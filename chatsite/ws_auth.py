"""Which session a websocket carries: the Django session cookie, named at the handshake.

In place of channels' `AuthMiddlewareStack`, which loads the session and then the user in two
trips to the database thread before the consumer runs, and wraps every frame the socket sends
(to save sessions a websocket never changes: this site's sockets only read theirs). Here the
middleware only names the session (`scope["session"]`, a store not yet loaded: nothing touches
the database in the event loop). The consumer reads it and its person in the one trip that
also admits the socket (`chat.consumers._open`), the person found as Django's `auth.get_user`
finds them, with its session-hash check (`chatsite.accounts.session_user`): a changed
password, a disabled account or a signed-out session signs nobody in, and the consumer refuses.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http.cookie import parse_cookie


def _session_cookie(scope: dict[str, Any]) -> str | None:
    header = "; ".join(
        value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"cookie"
    )
    return parse_cookie(header).get(settings.SESSION_COOKIE_NAME) if header else None


def session_store(session_key: str) -> SessionBase:
    """The session named `session_key`, not yet read (its first use reads it)."""
    store: SessionBase = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return store


class SessionCookieMiddleware:
    """Sets `scope["session"]` (None without a session cookie) for the websocket application
    inside; who it signs in is read with the socket's admission."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        session_key = _session_cookie(scope)
        session = session_store(session_key) if session_key else None
        return await self.app({**scope, "session": session}, receive, send)
