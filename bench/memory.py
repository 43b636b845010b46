"""Resident memory of one worker: per idle socket (1,000 of them) and per active reply.

A real server process (embedded default) is measured from /proc before and after: 1,000
websockets that only stay open, then replies streaming slowly from the fake provider.

    python -m bench.memory [--sockets 1000] [--replies 100] [--server daphne|uvicorn]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.client import send_frame  # noqa: E402
from bench.provider import prompt, provider_process  # noqa: E402
from bench.site import Site, bench_site  # noqa: E402


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


async def measure(site: Site, args: Any) -> None:
    worker, person = site.workers[0], site.person
    assert person is not None
    pid = worker.process.pid
    headers = site.headers(worker)
    base = worker.ws_url
    [idle_conversation] = await asyncio.to_thread(site.new_conversations, 1)
    url = f"{base}/ws/chat/{idle_conversation}/"
    warm = await open_sockets(url, headers, 20)  # imports and first-use caches
    before = rss_kib(pid)
    sockets = await open_sockets(url, headers, args.sockets)
    after = rss_kib(pid)
    per_socket = (after - before) / args.sockets
    print(f"idle sockets: {args.sockets}; RSS {before} -> {after} KiB; {per_socket:.1f} KiB each")

    conversations = await asyncio.to_thread(site.new_conversations, args.replies)
    streams = [
        await connect(f"{base}/ws/chat/{c}/", additional_headers=headers, compression=None)
        for c in conversations
    ]
    await asyncio.sleep(1.0)
    quiet = rss_kib(pid)
    for ws in streams:  # 20 s replies
        await ws.send(json.dumps(send_frame(prompt(events=400, rate=20), max_tokens=500)))
    await asyncio.sleep(8.0)  # mid-stream: every reply has text and buffers
    busy = rss_kib(pid)
    print(
        f"active replies: {args.replies}; RSS {quiet} -> {busy} KiB; "
        f"{(busy - quiet) / args.replies:.1f} KiB each (text so far about 160 events)"
    )
    for ws in [*warm, *sockets, *streams]:
        await ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--replies", type=int, default=100)
    parser.add_argument("--server", choices=("daphne", "uvicorn"), default="daphne")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # the server inherits
    with (
        provider_process() as (provider_url, _),
        bench_site("memory", provider_url=provider_url, server=args.server) as site,
    ):
        print(site.description)
        asyncio.run(measure(site, args))


if __name__ == "__main__":
    main()
