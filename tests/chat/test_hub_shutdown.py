"""A worker's hub stops when its loop stops, even when the channel layer's client turns the
cancellation into an error of its own (redis-py does; so does asyncio.timeout on Python 3.11),
or swallows it outright (asyncio.wait_for on Python 3.11, around each of redis-py's writes)."""

from __future__ import annotations

import asyncio
from typing import Any

from chat.hub import Hub


async def _wait_and_swallow_the_cancel() -> None:
    """Wait like a Redis client that catches the cancel, uses it up and raises its own."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError as cancelled:
        task = asyncio.current_task()
        assert task is not None
        task.uncancel()
        raise ConnectionError("Connection closed by server.") from cancelled


class _Layer:
    """What a hub's start asks of its layer."""

    async def new_channel(self, prefix: str = "") -> str:
        return f"{prefix}test!"

    async def group_add(self, group: str, channel: str) -> None:
        return None


class CancelSwallowingLayer(_Layer):
    """Receives like a Redis client that turns the cancel into its own error."""

    def __init__(self) -> None:
        self.receives = 0

    async def receive(self, channel: str) -> Any:
        self.receives += 1
        await _wait_and_swallow_the_cancel()


async def test_the_receive_loop_ends_on_a_cancellation_turned_into_another_error() -> None:
    layer = CancelSwallowingLayer()
    hub = Hub(layer=layer)
    await hub.start()
    await asyncio.sleep(0.01)
    await asyncio.wait_for(hub.close(), 2)  # before the fix: retried forever, never closed
    assert layer.receives == 1


class SendSwallowingLayer(_Layer):
    """Hands the hub one message whose handling makes a layer call, and that call turns the
    cancel into its own error (as redis-py's can)."""

    def __init__(self) -> None:
        self.sending = asyncio.Event()
        self.receives = 0

    async def receive(self, channel: str) -> Any:
        self.receives += 1
        if self.receives == 1:
            # Another worker's reply started in a conversation this worker's tab shows: the
            # hub asks that worker to let it watch (a layer call).
            return {"type": "relay.started", "conversation": 1, "owner": "hub.other!", "frames": []}
        await asyncio.sleep(3600)

    async def send(self, channel: str, message: Any) -> None:
        self.sending.set()
        await _wait_and_swallow_the_cancel()


class Tab:
    def push(self, text: str) -> None:
        pass


async def test_the_receive_loop_ends_on_a_cancellation_turned_into_an_error_while_handling() -> (
    None
):
    layer = SendSwallowingLayer()
    hub = Hub(layer=layer)
    hub.join(Tab(), 1)
    await hub.start()
    await asyncio.wait_for(layer.sending.wait(), 2)
    await asyncio.wait_for(hub.close(), 2)  # before the fix: received again, never closed
    assert layer.receives == 1


class CancelEatingLayer(_Layer):
    """Receives like channels-redis when redis-py's write swallowed the cancel: Python 3.11's
    `asyncio.wait_for` returns normally when the cancel lands as its inner call completes, and
    the receive blocks again (BZPOPMIN, five seconds at a time, for ever)."""

    def __init__(self) -> None:
        self.receives = 0
        self.eaten = 0
        self.ended = asyncio.Event()

    async def receive(self, channel: str) -> Any:
        self.receives += 1
        try:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.eaten += 1  # returned from, as wait_for does: the cancel is gone
            await asyncio.sleep(3600)  # blocks again; a later cancel ends it
        finally:
            self.ended.set()


async def test_the_receive_loop_ends_when_the_layer_swallows_the_cancellation() -> None:
    layer = CancelEatingLayer()
    hub = Hub(layer=layer)
    await hub.start()
    await asyncio.sleep(0.01)
    await asyncio.wait_for(hub.close(), 2)  # before the fix: waited in the receive for ever
    assert layer.eaten == 1
    assert layer.ended.is_set()  # the receive itself ended too, not left behind
    assert layer.receives == 1
