"""Resident memory of one worker: per idle socket (1,000 of them) and per active reply.

A real daphne process (embedded default) is measured from /proc before and after: 1,000
websockets that only stay open, then replies streaming slowly from the local fake provider.

    python -m bench.memory [--sockets 1000] [--replies 100]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.site import bench_site  # noqa: E402
from tests.e2e.servers import Person, Server  # noqa: E402
from tests.fakes.anthropic import text_reply  # noqa: E402
from tests.fakes.sse_server import SSEServer  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def open_sockets(url: str, headers: dict[str, str], n: int) -> list[ClientConnection]:
    sockets = []
    for start in range(0, n, 50):  # in batches, as tabs open over time
        batch = [
            connect(url, additional_headers=headers, compression=None, open_timeout=30)
            for _ in range(min(50, n - start))
        ]
        sockets += await asyncio.gather(*batch)
    await asyncio.sleep(1.0)
    return sockets


async def measure(server: Server, person: Person, provider: SSEServer, args: Any) -> None:
    pid = server.process.pid
    headers = {"Cookie": person.cookie_header, "Origin": server.url}
    base = server.url.replace("http://", "ws://")
    idle_conversation = await asyncio.to_thread(person.new_conversation)
    url = f"{base}/ws/chat/{idle_conversation}/"
    warm = await open_sockets(url, headers, 20)  # imports and first-use caches
    before = rss_kib(pid)
    sockets = await open_sockets(url, headers, args.sockets)
    after = rss_kib(pid)
    per_socket = (after - before) / args.sockets
    print(f"idle sockets: {args.sockets}; RSS {before} -> {after} KiB; {per_socket:.1f} KiB each")

    conversations = [await asyncio.to_thread(person.new_conversation) for _ in range(args.replies)]
    for _ in conversations:
        provider.enqueue(text_reply(["token "] * 400, delay=0.05))  # 20 s replies
    streams = [
        await connect(f"{base}/ws/chat/{c}/", additional_headers=headers, compression=None)
        for c in conversations
    ]
    await asyncio.sleep(1.0)
    quiet = rss_kib(pid)
    for ws in streams:
        await ws.send('{"type": "send", "content": "memory", "max_tokens": 500}')
    await asyncio.sleep(8.0)  # mid-stream: every reply has text and buffers
    busy = rss_kib(pid)
    print(
        f"active replies: {args.replies}; RSS {quiet} -> {busy} KiB; "
        f"{(busy - quiet) / args.replies:.1f} KiB each (text so far about 160 tokens)"
    )
    for ws in [*warm, *sockets, *streams]:
        await ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--replies", type=int, default=100)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # the server inherits
    with bench_site("memory") as (server, person, provider):
        asyncio.run(measure(server, person, provider, args))


if __name__ == "__main__":
    main()
