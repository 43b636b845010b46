"""The websocket consumer: authenticate, validate frames, call the runner. No business logic."""

from __future__ import annotations

import logging
from typing import Any, assert_never

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from chat import frames, replies, selectors
from chat.frames import FrameError, RetryFrame, SendFrame, StopFrame
from chat.hub import get_hub
from chatsite.accounts import still_signed_in

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


class ChatConsumer(AsyncWebsocketConsumer):
    # Frames reach sockets through the process's hub, which holds the only layer channel; a
    # channel per socket would cost memory and a layer receive loop for every idle socket.
    channel_layer_alias = "__hub_relays_instead__"

    conversation_id: int | None = None
    user_id: int | None = None
    session_key: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        conversation = await database_sync_to_async(selectors.conversation_for_owner)(
            owner_id=user.pk, conversation_id=conversation_id
        )
        if conversation is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.accept()
        self.user_id = user.pk
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        self.conversation_id = conversation_id
        hub = get_hub()
        hub.track(self)
        await hub.subscribe(self, conversation_id)

    async def disconnect(self, code: int) -> None:
        get_hub().untrack(self)
        if self.conversation_id is not None:
            await get_hub().unsubscribe(self, self.conversation_id)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.conversation_id is None or self.user_id is None:
            return
        try:
            frame = frames.parse_client_frame(text_data, bytes_data)
        except FrameError as exc:
            await self._send_error("invalid_request", str(exc))
            return
        try:
            await self._handle(frame)
        except replies.Refused as refused:
            await self.send(text_data=refused.frame())

    async def _handle(self, frame: Any) -> None:
        assert self.conversation_id is not None and self.user_id is not None
        if isinstance(frame, SendFrame | RetryFrame):
            # Paid actions re-check the person: signed out, new password, account disabled.
            signed_in = await database_sync_to_async(still_signed_in)(
                user_id=self.user_id, session_key=self.session_key
            )
            if not signed_in:
                await self._send_error("auth", "You have been signed out. Sign in again.")
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
        match frame:
            case SendFrame():
                for text in await replies.send_reply(
                    user_id=self.user_id, conversation_id=self.conversation_id, frame=frame
                ):
                    await self.send(text_data=text)
            case StopFrame():
                await get_hub().stop(self.conversation_id)
            case RetryFrame(message_id=message_id):
                await replies.retry_reply(
                    user_id=self.user_id,
                    conversation_id=self.conversation_id,
                    message_id=message_id,
                )
            case _:
                assert_never(frame)

    async def _send_error(self, code: str, message: str) -> None:
        await self.send(text_data=frames.error_frame(code=code, message=message, retryable=False))
