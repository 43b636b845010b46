"""The benchmarks' websocket client: one tab reading one reply, checking every event arrives.

It runs on the same 2 cores as the server it measures, so it is built to cost little: picows
(websocket frames parsed in Cython) on uvloop. The `websockets` library took about 40 µs of
the client's CPU per frame it received, and at 270 replies x 50 events/s two thirds of a core,
which the two workers then did not have (docs/benchmarks.md, seventh measurement).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvloop
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark's clients on uvloop (`asyncio.run` otherwise)."""
    return uvloop.run(main)


def send_frame(content: str, *, max_tokens: int = 8192) -> dict[str, Any]:
    """A `send` frame as the page sends it: with a new `client_id`, which the site checks
    against the conversation's earlier sends (a resent frame starts one reply, not two)."""
    return {
        "type": "send",
        "content": content,
        "client_id": uuid.uuid4().hex,
        "max_tokens": max_tokens,
    }


def _stamps(text: str) -> list[str]:
    return [part.split(">", 1)[0] for part in text.split("<")[1:]]


@dataclass
class Watch:
    """What one client saw of one reply."""

    latencies: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # when each event reached the client
    frames: int = 0
    events: int = 0
    gaps: int = 0
    ended: bool = False
    added_ttft_ms: float | None = None
    have: int = 0  # characters of the reply's text received
    by_snapshot: int = 0  # events that arrived inside a snapshot, not as deltas

    def feed(self, text: str, now: float, sent_at: float | None) -> bool:
        """One frame from the server, received at `now`: True once the reply has ended."""
        frame = json.loads(text)
        kind = frame["type"]
        if kind == "text_delta":
            self.frames += 1
            offset, delta = frame["offset"], frame["text"]
            if offset > self.have:
                self.gaps += 1
            # Only what is new counts (the page drops text it already has, by offset).
            fresh = delta[max(0, self.have - offset) :]
            self.have = max(self.have, offset + len(delta))
            for stamp in _stamps(fresh):
                emitted, _, received = stamp.partition("@")
                self.events += 1
                self.latencies.append((now - float(emitted)) * 1000)
                self.arrivals.append(now)
                if received and sent_at is not None:
                    provider_ttfb = float(emitted) - float(received)
                    self.added_ttft_ms = (now - sent_at - provider_ttfb) * 1000
        elif kind == "message_snapshot":
            # A watcher that joins a reply on another worker gets its text so far as a
            # snapshot: the events in it arrive now, with it. So does one whose worker's request
            # to follow the reply arrives while it is being settled (a saturated machine delays
            # the request by seconds): the whole text, in a snapshot marked complete.
            for stamp in _stamps(frame["content"][self.have :]):
                self.events += 1
                self.by_snapshot += 1
                self.latencies.append((now - float(stamp.partition("@")[0])) * 1000)
                self.arrivals.append(now)
            self.have = max(self.have, len(frame["content"]))
        elif kind in ("message_stop", "error"):
            self.ended = kind == "message_stop"
            return True
        return False


class _Listener(WSListener):
    """Feeds every text frame to the watch of the reply being read."""

    def __init__(self) -> None:
        self.watch: Watch | None = None
        self.sent_at: float | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A reply given up on (a timeout) may still see its socket close: not an error then.
        self.done.add_done_callback(lambda done: done.cancelled() or done.exception())

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            if not frame.fin:
                raise ValueError("the server sent a fragmented frame")
            if self.watch is None:
                return  # the catch-up before the send
            now = time.monotonic()
            ended = self.watch.feed(frame.get_payload_as_utf8_text(), now, self.sent_at)
            if ended and not self.done.done():
                self.done.set_result(None)
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError("the socket closed before the reply ended"))


class Socket:
    """One websocket to the server, as one tab."""

    def __init__(self, transport: WSTransport, listener: _Listener) -> None:
        self.transport = transport
        self.listener = listener

    @classmethod
    async def open(cls, url: str, headers: dict[str, str], timeout: float = 60) -> Socket:
        transport, listener = await ws_connect(
            _Listener, url, extra_headers=headers, websocket_handshake_timeout=timeout,
            max_frame_size=2**20, enable_auto_pong=True,
        )  # fmt: skip
        if not isinstance(listener, _Listener):  # picows returns no listener then
            raise ConnectionError("the server closed the connection during the handshake")
        return cls(transport, listener)

    def watch(self, watch: Watch, sent_at: float | None) -> None:
        """From now on, frames go to `watch`."""
        self.listener.watch, self.listener.sent_at = watch, sent_at

    def send(self, frame: dict[str, Any]) -> None:
        self.transport.send(WSMsgType.TEXT, json.dumps(frame).encode())

    async def ended(self, timeout: float) -> None:
        """Until the watched reply ends (its `message_stop` or an error frame)."""
        await asyncio.wait_for(asyncio.shield(self.listener.done), timeout)

    async def close(self) -> None:
        self.transport.send_close(WSCloseCode.OK)
        try:
            await asyncio.wait_for(self.transport.wait_disconnected(), 10)
        except TimeoutError:
            self.transport.disconnect()


async def read_reply(
    url: str, headers: dict[str, str], content: str, *, settle: float = 0.0
) -> tuple[Watch, float]:
    """Open a socket, send `content` (after `settle` seconds), read the reply to its end:
    (what was seen, when it was sent)."""
    socket = await Socket.open(url, headers)
    try:
        await asyncio.sleep(settle)
        watch, sent_at = Watch(), time.monotonic()
        socket.watch(watch, sent_at)
        socket.send(send_frame(content))
        await socket.ended(120)
    finally:
        await socket.close()
    return watch, sent_at
