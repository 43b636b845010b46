"""Added time to first token, with other replies streaming.

From the `send` frame to the first `text_delta` at the client, minus the fake provider's own
time to first byte (the first delta carries when the request arrived and when the delta was
written). Every pre-call step is included: the session re-check, the rate-limit count, the
person's message, the placeholder, the hold. Beside it, the floor: the same SDK call made
directly from this process, request to first text delta, minus the same provider time.

    python -m bench.ttft [--background 50] [--samples 100] [--server daphne|uvicorn]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import anthropic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import client  # noqa: E402
from bench.client import read_reply  # noqa: E402
from bench.provider import prompt, provider_process  # noqa: E402
from bench.relay import one_reply, percentile  # noqa: E402
from bench.site import Site, bench_site  # noqa: E402
from providers import sse  # noqa: E402


async def measured_reply(site: Site, conversation: int) -> float:
    worker = site.workers[0]
    # The page is open before the person sends.
    watch, _ = await read_reply(
        f"{worker.ws_url}/ws/chat/{conversation}/", site.headers(worker),
        prompt(events=5, rate=50), settle=0.05,
    )  # fmt: skip
    assert watch.added_ttft_ms is not None and watch.ended
    return watch.added_ttft_ms


async def floor_reply(client: anthropic.AsyncAnthropic) -> float:
    """The same call made directly, its stream read as the site reads it."""
    sent_at = time.monotonic()
    added = None
    async with client.messages.with_streaming_response.create(
        model="claude-sonnet-5-5",
        max_tokens=8192,
        messages=[{"role": "user", "content": prompt(events=5, rate=50)}],
        stream=True,
    ) as response:
        decoder = sse.Decoder()
        async for chunk in response.http_response.aiter_bytes():
            for name, data in decoder.feed(chunk):
                if added is None and name == "content_block_delta":
                    now = time.monotonic()
                    text = json.loads(data)["delta"]["text"]
                    emitted, _, received = text[1:].split(">", 1)[0].partition("@")
                    added = (now - sent_at - (float(emitted) - float(received))) * 1000
    assert added is not None
    return added


async def run(site: Site, provider_url: str, args: argparse.Namespace) -> None:
    assert site.person is not None
    conversations = await asyncio.to_thread(site.new_conversations, args.background + args.samples)
    background, measured = conversations[: args.background], conversations[args.background :]
    length = 10 + args.samples * 0.3  # the background outlasts the measurements
    content = prompt(events=int(length * 50), rate=50)
    start = time.monotonic() + 1.0
    streaming = [
        asyncio.ensure_future(
            one_reply(site, site.workers[0], f"/ws/chat/{c}/", content, start + i / 50, None)
        )
        for i, c in enumerate(background)
    ]
    await asyncio.sleep(4.0)  # every background reply is streaming
    site_ms = [await measured_reply(site, c) for c in measured]
    client = anthropic.AsyncAnthropic(
        api_key="sk-ant-bench", base_url=provider_url, max_retries=0,
        http_client=anthropic.DefaultAioHttpClient(),
    )  # fmt: skip
    floor_ms = [await floor_reply(client) for _ in range(args.samples)]
    await client.close()
    done = await asyncio.gather(*streaming, return_exceptions=True)
    failed = [d for d in done if isinstance(d, BaseException)]
    for name, values in (("site", sorted(site_ms)), ("floor (SDK call)", sorted(floor_ms))):
        print(
            f"{name:>17} {percentile(values, 0.5):>8.1f} {percentile(values, 0.99):>8.1f} "
            f"{values[-1]:>8.1f}"
        )
    if failed:
        print(f"{len(failed)} background replies failed, e.g. {failed[0]!r}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--background", type=int, default=50, help="replies streaming meanwhile")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--server", choices=("daphne", "uvicorn"), default="daphne")
    parser.add_argument("--services", action="store_true", help="PostgreSQL + Redis")
    args = parser.parse_args()
    with (
        provider_process() as (provider_url, _),
        bench_site("ttft", provider_url=provider_url, server=args.server,
                   services=args.services) as site,
    ):  # fmt: skip
        print(
            f"{site.description}; added time to first token with {args.background} other "
            f"replies streaming (50 events/s each), {args.samples} samples"
        )
        print(f"{'':>17} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        client.run(run(site, provider_url, args))


if __name__ == "__main__":
    main()
