"""Websocket handshakes from other sites are refused, without touching the channel layer.

The rule is the browser's own idea of "same origin", read strictly:

- exactly one `Origin` header, of the form `http(s)://host[:port]` and nothing else (no user
  info, path, backslash, `null`, `file:` or `javascript:`);
- its host and port are exactly the ones the socket was opened on: the `Host` header (or
  `X-Forwarded-Host` when `USE_X_FORWARDED_HOST` says a proxy sets it), a missing port being the
  scheme's default (80, 443);
- that host is one of `ALLOWED_HOSTS` (Django checks it for pages; channels does not for
  sockets). An origin listed in `CSRF_TRUSTED_ORIGINS` is accepted as it is written there.

The refusal is channels' `WebsocketDenier` (an HTTP 403 to the upgrade) with no channel layer:
the denier, a consumer like any other, would open a receive on the default layer for the instant
before it closes. On Redis that receive is then cancelled, and redis-py can use up the
cancellation (Python 3.11's `asyncio.timeout` race), leaving the task waiting on Redis for good:
a test loop's shutdown hung on it. A refusal needs no layer, so this one has none.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import validate_host

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = r"(?P<host>[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?"
_ORIGIN = re.compile(rf"(?P<scheme>https?)://{_HOST}", re.ASCII)
_HOST_HEADER = re.compile(_HOST, re.ASCII)


class _Denier(WebsocketDenier):
    channel_layer_alias = "__refusals_need_no_layer__"


class Place(NamedTuple):
    host: str
    port: int | None  # None: not written (the scheme's default)


def parse_origin(value: str) -> tuple[str, Place] | None:
    """`http(s)://host[:port]` as (scheme, place), or None for anything else."""
    match = _ORIGIN.fullmatch(value.lower())
    if match is None:
        return None
    port = _port(match["port"])
    if port == -1:
        return None
    return match["scheme"], Place(match["host"], port)


def parse_host(value: str) -> Place | None:
    match = _HOST_HEADER.fullmatch(value.lower())
    if match is None:
        return None
    port = _port(match["port"])
    return None if port == -1 else Place(match["host"], port)


def _port(text: str | None) -> int | None:
    """The port written, None if none, -1 if it is no port."""
    if text is None:
        return None
    port = int(text)
    return port if 0 < port < 65536 else -1


def _headers(scope: dict[str, Any], name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name]


def same_site(scope: dict[str, Any]) -> bool:
    """Whether the handshake in `scope` comes from a page of this site (the module's rule)."""
    origins = _headers(scope, b"origin")
    if len(origins) != 1:
        return False
    origin = origins[0]
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    scheme, place = parsed
    header = b"x-forwarded-host" if settings.USE_X_FORWARDED_HOST else b"host"
    hosts = _headers(scope, header)
    if not hosts:
        return False
    host = hosts[0]
    if settings.USE_X_FORWARDED_HOST:
        # Proxies in a chain each add theirs: the first is the one the browser named.
        host = host.split(",")[0].strip()
    served = parse_host(host)
    if served is None or served.host != place.host:
        return False
    if not validate_host(served.host, _allowed()):
        return False
    default = _DEFAULT_PORTS[scheme]
    return (place.port or default) == (served.port or default)


def _allowed() -> list[str]:
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return allowed


class SameSiteOrigins:
    """Lets through websocket handshakes from this site's pages (the module's rule)."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not same_site(scope):
            return await _Denier()(scope, receive, send)
        return await self.application(scope, receive, send)
