"""Relay capacity and latency of one worker: N concurrent replies, each watched by one socket.

A real daphne process (the embedded default: SQLite, in-memory layer) streams replies from the
local fake Anthropic server through the real SDK. Every provider event carries the moment it
was written (CLOCK_MONOTONIC is shared by processes on one machine), so the client measures
provider-emit to client-receive latency per event, through coalescing, websocket and all.

    python -m bench.relay [--sweep 25,50,100] [--rate 50] [--seconds 6] [--tokens-per-event 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.site import bench_site  # noqa: E402
from tests.e2e.servers import Person, Server  # noqa: E402
from tests.fakes.anthropic import text_reply  # noqa: E402
from tests.fakes.sse_server import SSEServer, sse  # noqa: E402


def stamped_reply(events: int, rate: float, tokens_per_event: int) -> Any:
    """A reply of `events` text deltas at `rate` per second, each stamped when it is written."""
    script = text_reply(["x"] * events, delay=1.0 / rate)
    deltas = [c for c in script.chunks if isinstance(c.data, bytes) and b'"text_delta"' in c.data]
    for chunk in deltas:

        def stamp() -> bytes:
            text = f"<{time.monotonic():.6f}>" + " w" * (tokens_per_event - 1)
            delta = {"type": "text_delta", "text": text}
            return sse(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )

        chunk.data = stamp
    return script


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def watch(url: str, headers: dict[str, str], events: int) -> tuple[list[float], int, int]:
    """Send, then read one reply: (latencies in ms, frames, gaps)."""
    latencies: list[float] = []
    frames = gaps = 0
    have = 0
    async with connect(url, additional_headers=headers, compression=None) as ws:
        await ws.send(json.dumps({"type": "send", "content": "bench", "max_tokens": 400}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
            now = time.monotonic()
            if frame["type"] == "text_delta":
                frames += 1
                if frame["offset"] > have:
                    gaps += 1
                have = max(have, frame["offset"] + len(frame["text"]))
                for part in frame["text"].split("<")[1:]:
                    latencies.append((now - float(part.split(">", 1)[0])) * 1000)
            elif frame["type"] in ("message_stop", "error"):
                if frame["type"] == "error":
                    gaps += 1
                return latencies, frames, gaps


async def run_level(
    server: Server, person: Person, provider: SSEServer, n: int, args: Any
) -> dict[str, Any]:
    events = int(args.seconds * args.rate)
    provider.default = None
    provider.scripts.clear()
    for _ in range(n):
        provider.enqueue(stamped_reply(events, args.rate, args.tokens_per_event))
    conversations = [await asyncio.to_thread(person.new_conversation) for _ in range(n)]
    headers = {"Cookie": person.cookie_header, "Origin": server.url}
    base = server.url.replace("http://", "ws://")
    cpu_before, started = cpu_seconds(server.process.pid), time.monotonic()
    results = await asyncio.gather(
        *(watch(f"{base}/ws/chat/{c}/", headers, events) for c in conversations)
    )
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(server.process.pid) - cpu_before
    latencies = sorted(x for r in results for x in r[0])
    frames = sum(r[1] for r in results)
    gaps = sum(r[2] for r in results)
    received = len(latencies)
    return {
        "replies": n,
        "events": n * events,
        "received": received,
        "p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": latencies[int(0.99 * (received - 1))] if latencies else float("nan"),
        "max_ms": latencies[-1] if latencies else float("nan"),
        "events_per_s": received / elapsed,
        "frames_per_s": frames / elapsed,
        "cpu_us_per_event": cpu / max(received, 1) * 1e6,
        "server_cpu_percent": cpu / elapsed * 100,
        "gaps_or_errors": gaps + (n * events - received),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sweep", default="25,50,100")
    parser.add_argument("--rate", type=float, default=50.0, help="events per second per reply")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each reply")
    parser.add_argument("--tokens-per-event", type=int, default=1)
    args = parser.parse_args()
    with bench_site("bench") as (server, person, provider):
        print(
            f"rate {args.rate:g} events/s per reply, {args.tokens_per_event} token(s) per event, "
            f"{args.seconds:g} s replies; daphne, SQLite, in-memory layer, one worker"
        )
        print(
            f"{'replies':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'events/s':>9} "
            f"{'frames/s':>9} {'us CPU/ev':>9} {'CPU %':>6} {'lost':>5}"
        )
        for n in (int(x) for x in args.sweep.split(",")):
            r = asyncio.run(run_level(server, person, provider, n, args))
            print(
                f"{r['replies']:>8} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} "
                f"{r['events_per_s']:>9.0f} {r['frames_per_s']:>9.0f} "
                f"{r['cpu_us_per_event']:>9.0f} "
                f"{r['server_cpu_percent']:>6.0f} {r['gaps_or_errors']:>5}",
                flush=True,
            )


if __name__ == "__main__":
    main()
