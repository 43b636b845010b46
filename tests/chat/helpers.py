"""Helpers to talk to the consumer the way a browser does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from chat.models import Conversation
from chatsite.routing import websocket_urlpatterns

router = URLRouter(websocket_urlpatterns)


async def connect(user: Any, conversation: Conversation) -> WebsocketCommunicator:
    """A connected socket for `user` on `conversation` (auth injected, as AuthMiddleware would)."""
    communicator = WebsocketCommunicator(router, f"/ws/chat/{conversation.pk}/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    assert connected, f"refused with {code}"
    return communicator


async def receive(communicator: WebsocketCommunicator, timeout: float = 5) -> dict[str, Any]:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def until_end(
    communicator: WebsocketCommunicator, timeout: float = 10
) -> list[dict[str, Any]]:
    """Frames up to and including the reply's `message_stop` or `error`."""
    frames: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        frame = await receive(communicator, max(0.01, deadline - loop.time()))
        frames.append(frame)
        if frame["type"] == "message_stop" or (frame["type"] == "error" and "message_id" in frame):
            return frames


async def send(communicator: WebsocketCommunicator, **frame: Any) -> None:
    await communicator.send_to(text_data=json.dumps(frame))


class ClientView:
    """What a browser assembles: snapshot + deltas joined by code-point offset (as the JS does)."""

    def __init__(self) -> None:
        self.text: dict[int, str] = {}
        self.thinking: dict[int, str] = {}
        self.status: dict[int, str] = {}
        self.gaps = 0

    def apply(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "message_start":
            self.text[frame["message_id"]] = ""
            self.thinking[frame["message_id"]] = ""
            self.status[frame["message_id"]] = "streaming"
        elif kind == "message_snapshot":
            self.text[frame["message_id"]] = frame["content"]
            self.thinking[frame["message_id"]] = frame["thinking"]
            self.status[frame["message_id"]] = frame["status"]
        elif kind in ("text_delta", "thinking_delta"):
            store = self.text if kind == "text_delta" else self.thinking
            have = store.setdefault(frame["message_id"], "")
            offset, text = frame["offset"], frame["text"]
            if offset > len(have):
                self.gaps += 1
                return
            if offset + len(text) > len(have):
                store[frame["message_id"]] = have + text[len(have) - offset :]
        elif kind == "message_stop":
            stopped = frame["stop_reason"] == "stopped"
            self.status[frame["message_id"]] = "stopped" if stopped else "complete"
        elif kind == "error" and "message_id" in frame:
            self.status[frame["message_id"]] = "error"
