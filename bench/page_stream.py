"""The page while a long reply streams, in headless Chromium: frames per second and the main
thread's time per delta.

A 20,000-token reply (`--tokens`, at `--rate` tokens a second from the fake provider, in
paragraphs of 60 words with code blocks among them) streams into a conversation page while
Chromium counts its animation frames and Chrome's own counters (`Performance.getMetrics`) add up
the main thread's script, style and layout time. Printed: frames per second while it streamed,
the main thread's milliseconds per text delta received and per second, and the longest task.
Run it from each tree to compare two versions of the page.

    python -m bench.page_stream [--tokens 20000] [--rate 400]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.site import bench_site  # noqa: E402
from tests.fakes.anthropic import text_reply  # noqa: E402
from tests.fakes.sse_server import SSEServer  # noqa: E402

FRAME_COUNTER = """() => {
  window.__frames = 0;
  const tick = () => { window.__frames += 1; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  window.__longest = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      window.__longest = Math.max(window.__longest, entry.duration);
    }
  }).observe({ type: "longtask", buffered: false });
}"""


def reply_chunks(tokens: int) -> list[str]:
    """`tokens` tokens of Markdown: paragraphs of 60 words, every fifth block a code block."""
    chunks: list[str] = []
    block = 0
    while len(chunks) < tokens:
        if block % 5 == 4:
            chunks += ["```python\n"] + [f"value_{block}_{i} = {i} * 2\n" for i in range(10)]
            chunks += ["```\n\n"]
        else:
            words = [f"word{block}_{i}" for i in range(60)]
            chunks += [w + " " for w in words[:-1]] + [words[-1] + "\n\n"]
        block += 1
    return chunks[:tokens]


def _metrics(session: Any) -> dict[str, float]:
    got = session.send("Performance.getMetrics")["metrics"]
    return {m["name"]: float(m["value"]) for m in got}


def measure(tokens: int, rate: float) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    provider = SSEServer().start()
    try:
        with bench_site("page-stream", provider_url=provider.url, pages=True) as site:
            worker = site.workers[0]
            assert site.person is not None
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
                context = browser.new_context(base_url=worker.url)
                context.add_cookies(
                    [
                        {"name": name, "value": value, "url": worker.url}
                        for name, _, value in (
                            part.strip().partition("=")
                            for part in site.person.cookie_header.split(";")
                        )
                    ]
                )
                page = context.new_page()
                deltas = [0]
                page.on(
                    "websocket",
                    lambda ws: ws.on(
                        "framereceived",
                        lambda frame: deltas.__setitem__(
                            0, deltas[0] + ('"text_delta"' in str(frame))
                        ),
                    ),
                )
                page.goto("/chat/")
                with page.expect_navigation():
                    page.click("#new-chat")
                page.wait_for_selector("#conversation[data-ready]")
                session = context.new_cdp_session(page)
                session.send("Performance.enable")
                page.evaluate(FRAME_COUNTER)
                provider.enqueue(text_reply(reply_chunks(tokens), delay=1.0 / rate))
                before = _metrics(session)
                frames_before = page.evaluate("window.__frames")
                started = time.perf_counter()
                page.fill("#input", "A very long answer, please")
                page.keyboard.press("Enter")
                page.wait_for_selector("#indicator", state="visible", timeout=30_000)
                page.wait_for_selector("#indicator", state="hidden", timeout=tokens / rate * 4e3)
                elapsed = time.perf_counter() - started
                after = _metrics(session)
                frames = page.evaluate("window.__frames") - frames_before
                longest = page.evaluate("window.__longest")
                browser.close()
    finally:
        provider.stop()
    busy = sum(
        after[k] - before[k] for k in ("ScriptDuration", "RecalcStyleDuration", "LayoutDuration")
    )
    return {
        "seconds": elapsed,
        "fps": frames / elapsed,
        "deltas": deltas[0],
        "ms_per_delta": busy * 1000 / max(deltas[0], 1),
        "busy_ms_per_s": busy * 1000 / elapsed,
        "longest_task_ms": longest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=400.0)
    args = parser.parse_args()
    r = measure(args.tokens, args.rate)
    print(
        f"page, {args.tokens:,} tokens at {args.rate:g}/s: {r['seconds']:.1f} s, "
        f"{r['fps']:.1f} frames/s, {r['deltas']:,} text deltas, main thread "
        f"{r['ms_per_delta']:.2f} ms per delta ({r['busy_ms_per_s']:.0f} ms per second), "
        f"longest task {r['longest_task_ms']:.0f} ms"
    )


if __name__ == "__main__":
    main()
