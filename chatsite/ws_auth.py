"""Who a websocket belongs to: the Django session cookie, read once, at the handshake.

In place of channels' `AuthMiddlewareStack`, which loads the session and then the user in two
trips to the database thread and wraps every frame the socket sends (to save sessions a
websocket never changes: this site's sockets only read theirs). Here one trip loads both, and
the person is found as Django's `auth.get_user` finds them, with its session-hash check
(`chatsite.accounts.session_user`): a changed password, a disabled account or a signed-out
session gives an anonymous user, whom the consumer refuses.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie

from chatsite.accounts import session_user


def _session_cookie(scope: dict[str, Any]) -> str | None:
    header = "; ".join(
        value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"cookie"
    )
    return parse_cookie(header).get(settings.SESSION_COOKIE_NAME) if header else None


def _load(session_key: str) -> tuple[Any, Any]:
    """The session and its person (anonymous if it signs nobody in), in one trip."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return session_user(session) or AnonymousUser(), session


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
