"""Websocket handshakes from other sites are refused, without touching the channel layer.

channels' `AllowedHostsOriginValidator` refuses with its `WebsocketDenier`, a consumer like any
other: it opens a receive on the default channel layer for the instant before it closes. On
Redis that receive is then cancelled, and redis-py can use up the cancellation (Python 3.11's
`asyncio.timeout` race), leaving the task waiting on Redis for good: a test loop's shutdown hung
on it. A refusal needs no layer, so this one has none.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult, urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings


class _Denier(WebsocketDenier):
    channel_layer_alias = "__refusals_need_no_layer__"


def _origin(scope: dict[str, Any]) -> ParseResult | None:
    """The handshake's Origin, parsed as channels parses it (the last one wins)."""
    parsed = None
    for name, value in scope.get("headers", []):
        if name == b"origin":
            parsed = urlparse(value.decode("latin1"))  # latin-1 decodes any bytes
    return parsed


class SameSiteOrigins(OriginValidator):
    """`AllowedHostsOriginValidator`'s rule (origins in ALLOWED_HOSTS), its refusal layerless."""

    def __init__(self, application: Any) -> None:
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, allowed)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not self.valid_origin(_origin(scope)):
            return await _Denier()(scope, receive, send)
        return await super().__call__(scope, receive, send)
