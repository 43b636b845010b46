"""A reply's fixed cost: the server's CPU per reply, replies one after another.

Each reply opens its socket, sends, streams a few events and closes, with nothing else running,
so the server's CPU per reply is what a reply costs besides its streaming: the handshake, the
catch-up, the send, the provider request, the settle, the close. Beside it, the floor
(`bench.floor`: the handshake, the SDK call and one frame per event, nothing else). With
`--profile`, py-spy samples the measured replies (raw stacks in `artifacts/`), only the thread
holding the GIL: the event loop's and the database thread's Python CPU, not their waits.

    python -m bench.reply_cost [--replies 150] [--events 5] [--server daphne|uvicorn] [--profile]
                               [--services] [--traces off|on|text|sdk] [--linger SECONDS]

`--services` runs the site on PostgreSQL + Redis (one worker), as a scaled-out site runs.
`--traces on` has the site export its traces to a local OTLP/HTTP collector (`text`: with the
text; `sdk`: with the Anthropic SDK's own spans), in the SDK's default batches (every 5 s): with
`--linger 7` its export falls within the count, and against a run without (`--linger 7` too)
it is what tracing costs a reply, its export thread's
CPU included; against a run with more `--events`, what it costs per streamed event.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import client  # noqa: E402
from bench.client import read_reply  # noqa: E402
from bench.provider import prompt, provider_process  # noqa: E402
from bench.relay import cpu_seconds  # noqa: E402
from bench.site import Site, add_traces_option, bench_site, collector  # noqa: E402
from tests.e2e.servers import ARTIFACTS  # noqa: E402

WARM_UP = 20  # replies before measuring: imports, the SDK client, the first connections


async def one_reply(site: Site, path: str, events: int) -> None:
    worker = site.workers[0]
    watch, _ = await read_reply(
        worker.ws_url + path, site.headers(worker), prompt(events=events, rate=500)
    )
    if not watch.ended or watch.gaps or watch.events != events:
        raise RuntimeError(f"a reply went wrong: {watch.events} of {events} events")


async def measure(site: Site, app: str, args: argparse.Namespace) -> float:
    """CPU milliseconds per reply."""
    count = WARM_UP + args.replies
    if site.person is not None:
        conversations = await asyncio.to_thread(site.new_conversations, count)
        paths = [f"/ws/chat/{c}/" for c in conversations]
    else:
        paths = ["/ws/floor/"] * count
    for path in paths[:WARM_UP]:
        await one_reply(site, path, args.events)
    spy = None
    if args.profile:
        where = "-services" if args.services and app == "site" else ""
        out = ARTIFACTS / f"profile-reply-cost-{args.server}-{app}{where}.txt"
        py_spy = Path(sys.executable).with_name("py-spy")
        spy = await asyncio.create_subprocess_exec(
            str(py_spy) if py_spy.exists() else "py-spy", "record", "-p", str(site.pids[0]),
            "-r", "500", "--gil", "--format", "raw", "-o", str(out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(1.0)  # py-spy attaches
    before = cpu_seconds(site.pids[0])
    for path in paths[WARM_UP:]:
        await one_reply(site, path, args.events)
    # With --linger, the site's CPU over that many seconds more is counted too (an export of
    # its traces, which batches every 5 s, happens within them; compare runs of equal linger).
    await asyncio.sleep(args.linger)
    cpu = cpu_seconds(site.pids[0]) - before
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        await spy.wait()
        print(f"  profile: {out}", file=sys.stderr)
    return cpu / args.replies * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replies", type=int, default=150)
    parser.add_argument("--events", type=int, default=5, help="events per reply")
    parser.add_argument("--server", choices=("daphne", "uvicorn"), default="daphne")
    parser.add_argument("--profile", action="store_true", help="py-spy the measured replies")
    parser.add_argument("--services", action="store_true", help="the site on PostgreSQL + Redis")
    parser.add_argument(
        "--linger", type=float, default=0.0, help="count the site's CPU this much longer (s)"
    )
    add_traces_option(parser)
    args = parser.parse_args()
    results = {}
    with provider_process() as (provider_url, _), collector(args.traces) as traces:
        for app in ("floor", "site"):
            with bench_site(
                "reply-cost", provider_url=provider_url, server=args.server, app=app,
                services=args.services and app == "site", extra_env=traces.env,
            ) as site:  # fmt: skip
                results[app] = client.run(measure(site, app, args))
    where = ", PostgreSQL + Redis" if args.services else ""
    exported = ""
    if args.traces != "off":
        with_text = {"text": " with the text", "sdk": " with the SDK's spans"}.get(args.traces, "")
        exported = f", traces exported{with_text} ({traces.posts} posts, {traces.size:,} bytes)"
    print(
        f"{args.server}{where}{exported}: CPU per reply, {args.replies} replies of {args.events} "
        f"events one after another: site {results['site']:.1f} ms, floor {results['floor']:.1f} ms"
    )


if __name__ == "__main__":
    main()
