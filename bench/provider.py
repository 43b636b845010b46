"""The benchmarks' fake Anthropic provider, in a process of its own.

It answers every `POST /v1/messages` with a paced stream of the documented events. The pacing is
read from the request's last user message, `bench events=300 rate=50 tokens=1 ttfb=0`, so the
process keeps no state and any number of servers can share it. Every text delta carries the
moment it was written (`<emit>`; the first also `<emit@received>`, when the request arrived):
CLOCK_MONOTONIC is shared by the processes of one machine, so a client can measure
provider-emit to client-receive latency, and the provider's own time to first byte, per event.

    python -m bench.provider          # prints its URL, serves until killed
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parents[1]


def prompt(*, events: int, rate: float, tokens: int = 1, ttfb: float = 0.0) -> str:
    """The message a benchmark client sends: the reply's shape, read back by the provider."""
    return f"bench events={events} rate={rate:g} tokens={tokens} ttfb={ttfb:g}"


def _shape(body: dict[str, Any]) -> dict[str, float]:
    content = body["messages"][-1]["content"]
    text = content if isinstance(content, str) else content[-1]["text"]
    shape = {"events": 20.0, "rate": 50.0, "tokens": 1.0, "ttfb": 0.0}
    shape.update((k, float(v)) for k, v in re.findall(r"(\w+)=([\d.]+)", text))
    return shape


def _event(name: str, data: dict[str, Any]) -> bytes:
    payload = f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(payload), payload)


_START = _event(
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-5-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 20, "output_tokens": 1},
        },
    },
) + _event("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}})  # fmt: skip


def _end(tokens: int) -> bytes:
    return (
        _event("content_block_stop", {"type": "content_block_stop", "index": 0})
        + _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": tokens},
            },
        )
        + _event("message_stop", {"type": "message_stop"})
        + b"0\r\n\r\n"
    )


# A text delta's payload around its text (stamps and filler, which need no JSON escaping):
# `json.dumps` per event was a third of this process's CPU.
_DELTA_HEAD, _DELTA_TAIL = (
    (
        "event: content_block_delta\ndata: "
        + json.dumps(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "\0"},
            },
            separators=(",", ":"),
        )
        + "\n\n"
    )
    .encode()
    .split(b"\\u0000")
)


def _delta(text: str) -> bytes:
    payload = _DELTA_HEAD + text.encode() + _DELTA_TAIL
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _stream(transport: asyncio.WriteTransport, shape: dict[str, float], received: float) -> None:
    """Write the reply, paced by timer callbacks (no task or future per event: this process
    shares the 2 cores with the server it feeds). Paced against the schedule, not the last
    write, so a late event does not delay the rest."""
    events, interval = int(shape["events"]), 1.0 / shape["rate"]
    filler = " w" * (int(shape["tokens"]) - 1)
    transport.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nrequest-id: req_bench\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + _START
    )
    loop = asyncio.get_running_loop()
    first = loop.time() + shape["ttfb"]

    def emit(n: int) -> None:
        if transport.is_closing():
            return
        now = time.monotonic()
        stamp = f"<{now:.6f}@{received:.6f}>" if n == 0 else f"<{now:.6f}>"
        transport.write(_delta(stamp + filler))
        if n + 1 < events:
            loop.call_at(first + (n + 1) * interval, emit, n + 1)
        else:
            transport.write(_end(events * int(shape["tokens"])))

    if events:
        loop.call_at(first, emit, 0)
    else:
        transport.write(_end(0))


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            received = time.monotonic()
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = json.loads(await reader.readexactly(length)) if length else {}
            _stream(writer.transport, _shape(body), received)
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def _serve() -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", 0, backlog=4096)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


@contextmanager
def provider_process() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start the provider in its own process: (its URL, the process)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.provider"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip(), process
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_serve())  # as the clients: the load generator shares the server's cores
