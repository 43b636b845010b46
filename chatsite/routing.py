from __future__ import annotations

from django.urls import path, re_path

from chat.consumers import ChatConsumer, NoSuchSocket

websocket_urlpatterns = [
    path("ws/chat/<int:conversation_id>/", ChatConsumer.as_asgi()),
    # Any other path (`/ws/chat/abc/`): refused as a missing conversation, not an unhandled
    # "No route found" with a traceback in the log.
    re_path(r"", NoSuchSocket.as_asgi()),
]
