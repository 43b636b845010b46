"""ASGI entry point: HTTP through Django, websockets through Channels."""

from __future__ import annotations

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chatsite.origins import SameSiteOrigins  # noqa: E402
from chatsite.routing import websocket_urlpatterns  # noqa: E402
from chatsite.ws_auth import SessionCookieMiddleware  # noqa: E402
from providers import clients, registry  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameSiteOrigins(SessionCookieMiddleware(URLRouter(websocket_urlpatterns))),
    }
)

# Made now, not in the first reply: loading the CA bundle, and importing the provider SDKs,
# would block the event loop.
clients.tls()
registry.load_adapters()

# Everything imported by now lives as long as the process (the provider SDKs' types are most of
# it). Every full garbage collection would walk it all, a pause in which no frame is relayed
# (docs/benchmarks.md). Frozen, collections skip it; the garbage of start-up is collected
# first, as frozen objects are never freed.
gc.collect()
gc.freeze()
