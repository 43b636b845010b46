"""Who a websocket belongs to: the Django session cookie, read once, at the handshake.

In place of channels' `AuthMiddlewareStack`, which loads the session and then the user in two
trips to the database thread and wraps every frame the socket sends (to save sessions a
websocket never changes: this site's sockets only read theirs). Here one trip loads both, and
the person is Django's own `auth.get_user`, with its session-hash check: a changed password or
a signed-out session gives an anonymous user, whom the consumer refuses.
"""

from __future__ import annotations

from importlib import import_module
from types import SimpleNamespace
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie


def _session_cookie(scope: dict[str, Any]) -> str | None:
    header = "; ".join(
        value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"cookie"
    )
    return parse_cookie(header).get(settings.SESSION_COOKIE_NAME) if header else None


def _load(session_key: str) -> tuple[Any, Any]:
    """The session and its user, in one trip (a session that fails the check is flushed)."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = auth.get_user(SimpleNamespace(session=session))  # type: ignore[arg-type]
    return user, session


class SessionAuthMiddleware:
    """Sets `scope["user"]` and `scope["session"]` for the websocket application inside."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        session_key = _session_cookie(scope)
        user: Any = AnonymousUser()
        session = None
        if session_key:
            user, session = await database_sync_to_async(_load)(session_key)
        return await self.app({**scope, "user": user, "session": session}, receive, send)
