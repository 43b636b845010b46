"""A real HTTP/1.1 server on loopback that streams scripted SSE, for the real SDKs to talk to.

It runs its own event loop in a thread, so sync and async tests can use it alike. It records
each request (path, headers, JSON body) and whether the client hung up before a stream ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Chunk:
    # The bytes, or a function making them when they are sent (benchmarks stamp the time).
    data: bytes | Callable[[], bytes]
    delay: float = 0.0  # seconds to wait before writing it

    def payload(self) -> bytes:
        return self.data() if callable(self.data) else self.data


@dataclass
class Script:
    """One scripted response."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[Chunk] = field(default_factory=list)
    body: bytes | None = None  # a plain (non-streaming) body, e.g. a JSON error
    hang: float = 0.0  # after the chunks, stay silent this long before ending
    drop: bool = False  # close the connection abruptly instead of ending the stream


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    started: float
    ended: float | None = None
    disconnected_at: float | None = None  # the client hung up before the stream ended
    completed: bool = False
    connection: int = 0  # which TCP connection carried it (numbered as they were accepted)


def sse(event: str | None, data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


class SSEServer:
    def __init__(self) -> None:
        self.scripts: deque[Script] = deque()
        self.default: Script | None = None
        self.connections = 0  # accepted so far
        self.requests: list[Recorded] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-sse-server", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self.port = 0

    # --- control from tests --------------------------------------------------------------------

    def start(self) -> SSEServer:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.scripts.clear()
        self.default = None
        self.requests.clear()

    def enqueue(self, *scripts: Script) -> None:
        self.scripts.extend(scripts)

    def wait_for_disconnect(self, timeout: float = 5.0) -> Recorded:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for request in self.requests:
                if request.disconnected_at is not None:
                    return request
            time.sleep(0.005)
        raise AssertionError("the client never hung up")

    # --- the server ----------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.connections += 1
        connection = self.connections
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    return
                request.connection = connection
                script = self._script_for(request)
                keep = await self._respond(script, request, reader, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def _script_for(self, request: Recorded) -> Script:
        """The next script, unless the request asks for no stream and the next one streams: a
        call that cannot take it (a conversation's title call arriving late, after its test)
        answers "no script" and leaves it for the stream it was queued for."""
        wants_stream = isinstance(request.body, dict) and bool(request.body.get("stream"))
        head = self.scripts[0] if self.scripts else None
        if head is not None and (wants_stream or head.body is not None):
            return self.scripts.popleft()
        if head is None and self.default is not None:
            return self.default
        return Script(status=500, body=b'{"error": "no script"}')

    async def _read_request(self, reader: asyncio.StreamReader) -> Recorded | None:
        line = await reader.readline()
        if not line:
            return None
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        data = await reader.readexactly(length) if length else b""
        body: Any = json.loads(data) if data else None
        record = Recorded(method, path, headers, body, started=time.monotonic())
        self.requests.append(record)
        return record

    async def _respond(
        self,
        script: Script,
        record: Recorded,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        reason = {200: "OK"}.get(script.status, "Status")
        head = [f"HTTP/1.1 {script.status} {reason}"]
        headers = {"request-id": "req_fake", **script.headers}
        if script.body is not None:
            headers.setdefault("content-type", "application/json")
            headers["content-length"] = str(len(script.body))
            head += [f"{k}: {v}" for k, v in headers.items()]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + script.body)
            await writer.drain()
            record.completed = True
            record.ended = time.monotonic()
            return True
        headers.setdefault("content-type", "text/event-stream")
        headers["transfer-encoding"] = "chunked"
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await writer.drain()
        # While streaming the client sends nothing: a read returning b"" means it hung up.
        hangup = asyncio.ensure_future(reader.read(1))
        try:
            for chunk in [*script.chunks, Chunk(b"", script.hang)]:
                if chunk.delay:
                    await asyncio.wait([hangup], timeout=chunk.delay)
                if hangup.done():
                    record.disconnected_at = time.monotonic()
                    return False
                data = chunk.payload()
                if data:
                    writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                    await writer.drain()
            if script.drop:
                writer.transport.abort()
                return False
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            record.completed = True
            record.ended = time.monotonic()
            return True
        except ConnectionError:
            record.disconnected_at = time.monotonic()
            return False
        finally:
            hangup.cancel()
            # Let the cancelled read finish before the next request on this connection is read.
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await hangup
