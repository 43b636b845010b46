"""Helpers to talk to the consumer the way a browser does."""

from __future__ import annotations

import asyncio
import json
from importlib import import_module
from typing import Any

from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

from chat.models import Conversation
from chatsite.routing import websocket_urlpatterns

router = URLRouter(websocket_urlpatterns)


def signed_in_session(user: Any) -> Any:
    """A saved session that signs `user` in, as logging in through the site makes one."""
    engine = import_module(settings.SESSION_ENGINE)
    session = engine.SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return session


async def connect(
    user: Any, conversation: Conversation, session: Any = None
) -> WebsocketCommunicator:
    """A connected socket for `user` on `conversation` (a session that signs them in injected,
    as chatsite.ws_auth's middleware names the cookie's)."""
    communicator = WebsocketCommunicator(router, f"/ws/chat/{conversation.pk}/")
    communicator.scope["session"] = session or await database_sync_to_async(signed_in_session)(user)
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
        # Each reply's tool calls, as `message_snapshot` carries them.
        self.tools: dict[int, list[dict[str, Any]]] = {}
        self.gaps = 0

    def apply(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "message_start":
            self.text[frame["message_id"]] = ""
            self.thinking[frame["message_id"]] = ""
            self.tools[frame["message_id"]] = []
            self.status[frame["message_id"]] = "streaming"
        elif kind == "message_snapshot":
            self.text[frame["message_id"]] = frame["content"]
            self.thinking[frame["message_id"]] = frame["thinking"]
            self.status[frame["message_id"]] = frame["status"]
            # As the page keeps them: a call's round is the server's (Message.tools) only.
            self.tools[frame["message_id"]] = [
                {k: v for k, v in call.items() if k != "round"} for call in frame["tools"]
            ]
        elif kind == "tool_call":
            calls = self.tools.setdefault(frame["message_id"], [])
            if all(call["call_id"] != frame["call_id"] for call in calls):
                fields = ("call_id", "name", "input", "offset")
                calls.append({**{name: frame[name] for name in fields}, "result": None})
        elif kind == "tool_result":
            for call in self.tools.get(frame["message_id"], []):
                if call["call_id"] == frame["call_id"]:
                    outcome = ("is_error", "content", "duration_ms")
                    call["result"] = {name: frame[name] for name in outcome}
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
