"""Relay capacity and latency: N concurrent replies, each watched by a real websocket client.

Three processes at least, as in production: the fake provider (`bench.provider`), the server
(daphne or uvicorn; one worker on the embedded default, or `--services --workers 2` on
PostgreSQL + Redis) and this one, the clients. Every provider event carries the moment it was
written, so each client measures provider-emit to client-receive latency per event, through
the SDK, coalescing and the websocket. Server CPU is read from `/proc` for the server processes
alone. `--app floor` serves `bench.floor` instead of the site: the same SDK iteration sending
one frame per event, no Django. By default the N replies start within one second and stream
together (a worst case: every start and every end at once); with `--churn` N are in flight at
every moment, starting and ending all the time, as on a busy site.

    python -m bench.relay [--sweep 50,100,150] [--rate 50] [--tokens-per-event 1] [--seconds 6]
                          [--server daphne|uvicorn] [--app site|floor] [--services --workers 2]
                          [--churn CYCLES] [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import client  # noqa: E402
from bench.client import Socket, Watch  # noqa: E402
from bench.provider import prompt, provider_process  # noqa: E402
from bench.site import Site, Worker, add_traces_option, bench_site, collector  # noqa: E402
from tests.e2e.servers import ARTIFACTS  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_seconds() -> tuple[float, float]:
    """CPU seconds the whole machine (every core, every process) has been busy, and of them
    those its hypervisor ran something else on (steal: this machine's cores are virtual)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle and iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, fields[7] / tick


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")


async def one_reply(
    site: Site, worker: Worker, path: str, content: str, start_at: float, watcher: Worker | None
) -> list[Watch]:
    """Open the socket (and a watcher's on another worker), send at `start_at`, read it all."""
    mine, theirs = Watch(), Watch()
    socket = await Socket.open(worker.ws_url + path, site.headers(worker))
    other = None
    try:
        if watcher is not None:
            other = await Socket.open(watcher.ws_url + path, site.headers(watcher))
            other.watch(theirs, None)
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        socket.watch(mine, time.monotonic())
        socket.send(client.send_frame(content))
        await socket.ended(120)
        if other is not None:
            await other.ended(120)
    finally:
        for s in (socket, other):
            if s is not None:
                await s.close()
    return [mine, theirs] if watcher is not None else [mine]


async def lane(
    site: Site,
    worker: Worker,
    paths: list[str],
    content: str,
    first_at: float,
    watcher: Worker | None,
) -> list[Watch]:
    """Replies one after another, each on a new conversation's socket, the first at
    `first_at`: a person starting a new chat as soon as the last reply ended."""
    watches: list[Watch] = []
    for k, path in enumerate(paths):
        at = first_at if k == 0 else 0.0
        watches += await one_reply(site, worker, path, content, at, watcher)
    return watches


async def run_level(site: Site, n: int, args: argparse.Namespace) -> dict[str, Any]:
    events = int(args.seconds * args.rate)
    content = prompt(events=events, rate=args.rate, tokens=args.tokens_per_event)
    cycles = max(1, args.churn)
    if site.person is None:
        paths = ["/ws/floor/"] * (n * cycles)
    else:
        made = await asyncio.to_thread(site.new_conversations, n * cycles)
        paths = [f"/ws/chat/{conversation}/" for conversation in made]
    workers = site.workers
    # The floor has no hub to relay through: its sockets only see the replies they send.
    watching = args.watch_other and len(workers) > 1 and site.person is not None
    watched_every = round(1 / args.watch_other) if watching else 0
    start = time.monotonic() + 2.0 + n / 200
    plan = []
    for i in range(n):
        worker = workers[i % len(workers)]
        watcher = (
            workers[(i + 1) % len(workers)] if watched_every and i % watched_every == 0 else None
        )
        if args.churn:
            # Lanes start spread over one reply's length, so N replies are always in flight and
            # N / length of them start (and end) every second, each with its own handshake.
            first_at = start + i / n * args.seconds
            own = paths[i * cycles : (i + 1) * cycles]
            plan.append(lane(site, worker, own, content, first_at, watcher))
        else:
            # Sockets open first; the replies then start spread over one second.
            at = start + random.random()
            plan.append(one_reply(site, worker, paths[i], content, at, watcher))
    cpu_before = sum(cpu_seconds(pid) for pid in site.pids)
    done = asyncio.Event()
    sampling = asyncio.get_running_loop().create_task(cpu_samples(site, done, args.provider_pid))
    if args.profile == "streaming":
        at, length = start + args.seconds / 4, args.seconds / 2
    elif args.profile == "starting":  # the second in which the replies start
        at, length = start, 2.0
    else:  # the whole level: handshakes, sends and settles too
        at, length = time.monotonic(), start + cycles * args.seconds + 3 - time.monotonic()
    profiling = (
        asyncio.get_running_loop().create_task(profile(site, n, at, length, args.profile))
        if args.profile
        else None
    )
    results = await asyncio.gather(*plan, return_exceptions=True)
    elapsed = time.monotonic() - start
    cpu = sum(cpu_seconds(pid) for pid in site.pids) - cpu_before
    done.set()
    samples = await sampling
    if profiling is not None:
        await profiling
    watches = [w for r in results if not isinstance(r, BaseException) for w in r]
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        print(f"  {len(failures)} client(s) failed, e.g. {failures[0]!r}", file=sys.stderr)
    for w in watches:
        if w.gaps or not w.ended:
            print(f"  a client saw {w.gaps} gap(s), ended: {w.ended}", file=sys.stderr)
    latencies = sorted(x for w in watches for x in w.latencies)
    watched = sum(1 for i in range(n) if watched_every and i % watched_every == 0)
    expected = (n + watched) * cycles * events
    received = sum(w.events for w in watches)
    missing = expected - received  # a failed client's events are all missing
    gaps = sum(w.gaps for w in watches)
    unended = sum(1 for w in watches if not w.ended)
    # The steady window: every reply streams (the last one's first event came, the first one's
    # last has not), so no send, handshake or settle is in it. CPU in it, per event received in
    # it, is the relay's steady cost.
    if args.churn:
        # From when every lane has begun to when the first one ends: N replies in flight,
        # starting and ending as they go.
        lanes = [r for r in results if not isinstance(r, BaseException)]
        window = steady_window([merged(ws) for ws in lanes if any(w.arrivals for w in ws)])
    else:
        window = steady_window([w for w in watches if w.arrivals])
    steady_cpu = cpu_at(samples, window[1]) - cpu_at(samples, window[0])
    window_seconds = max(window[1] - window[0], 1e-9)
    # The machine's other load in the same window: this process (the clients), the provider
    # and everything else; the server's figures mean little once the machine is saturated.
    load_cpu = cpu_at(samples, window[1], LOAD) - cpu_at(samples, window[0], LOAD)
    busy = cpu_at(samples, window[1], MACHINE) - cpu_at(samples, window[0], MACHINE)
    stolen = cpu_at(samples, window[1], STEAL) - cpu_at(samples, window[0], STEAL)
    streaming = sorted(
        latency
        for w in watches
        for latency, t in zip(w.latencies, w.arrivals, strict=True)
        if window[0] <= t < window[1]
    )
    in_window = len(streaming)
    # Outside the window: while replies start (sends, first requests) and while they end
    # (settles, closes); the whole-run p99 is decided in one of these when it misses.
    starting = sorted(
        latency
        for w in watches
        for latency, t in zip(w.latencies, w.arrivals, strict=True)
        if t < window[0]
    )
    ending = sorted(
        latency
        for w in watches
        for latency, t in zip(w.latencies, w.arrivals, strict=True)
        if t >= window[1]
    )
    steady_per_event = steady_cpu / max(in_window, 1)
    ttft = sorted(w.added_ttft_ms for w in watches if w.added_ttft_ms is not None)
    return {
        "server": args.server,
        "app": args.app,
        "services": args.services,
        "workers": len(workers),
        "churn": args.churn,
        "rate": args.rate,
        "tokens_per_event": args.tokens_per_event,
        "replies": n,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": latencies[-1] if latencies else float("nan"),
        # Only the events received while every reply streams: no reply starting or ending.
        "steady_p99_ms": percentile(streaming, 0.99),
        "steady_seconds": window[1] - window[0],
        "start_p99_ms": percentile(starting, 0.99),
        "end_p99_ms": percentile(ending, 0.99),
        "start_events": len(starting),
        "end_events": len(ending),
        "events_per_s": received / elapsed,
        "frames_per_s": sum(w.frames for w in watches) / elapsed,
        "cpu_us_per_event": cpu / max(received, 1) * 1e6,
        "steady_cpu_us_per_event": steady_per_event * 1e6,
        # The rest of the run's CPU, per reply: handshakes, sends, catch-up, settles, closes.
        "cpu_ms_per_reply": (cpu - steady_per_event * received) / (n * cycles) * 1e3,
        "server_cpu_percent": cpu / elapsed * 100,
        # In the steady window: the server, the load generator (clients and provider) and the
        # whole machine (percent of one core; the machine has os.cpu_count() of them).
        "steady_server_cpu_percent": steady_cpu / window_seconds * 100,
        "steady_load_cpu_percent": load_cpu / window_seconds * 100,
        "steady_machine_cpu_percent": busy / window_seconds * 100,
        # Of the machine's: time its cores were taken by the hypervisor for other machines.
        "steady_steal_cpu_percent": stolen / window_seconds * 100,
        "cores": os.cpu_count(),
        # Every event a client did not get (failed clients' included), gap and unended reply.
        "lost": missing + gaps + unended,
        "missing_events": missing,
        # Received, but inside a snapshot (a watcher that joined late), not as deltas.
        "snapshot_events": sum(w.by_snapshot for w in watches),
        "gaps": gaps,
        "unended": unended,
        "ttft_p50_ms": percentile(ttft, 0.5),
        "ttft_p99_ms": percentile(ttft, 0.99),
    }


# What each sample holds after its time: CPU seconds of the server processes, of the load
# generator (this process and the provider's), of the whole machine, and of the machine's
# stolen by its hypervisor.
SERVER, LOAD, MACHINE, STEAL = 1, 2, 3, 4
Sample = tuple[float, float, float, float, float]


async def cpu_samples(site: Site, done: asyncio.Event, provider_pid: int) -> list[Sample]:
    """CPU seconds every 50 ms until `done` (see SERVER, LOAD, MACHINE, STEAL)."""
    samples = []
    load_pids = (os.getpid(), provider_pid)
    while True:
        samples.append(
            (
                time.monotonic(),
                sum(cpu_seconds(pid) for pid in site.pids),
                sum(cpu_seconds(pid) for pid in load_pids),
                *machine_seconds(),
            )
        )
        if done.is_set():
            return samples
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.05)


def cpu_at(samples: list[Sample], moment: float, what: int = SERVER) -> float:
    """CPU seconds of `what` at `moment`, interpolated between the samples around it."""
    before = max((s for s in samples if s[0] <= moment), default=samples[0])
    after = min((s for s in samples if s[0] >= moment), default=samples[-1])
    if after[0] == before[0]:
        return before[what]
    share = (moment - before[0]) / (after[0] - before[0])
    return before[what] + share * (after[what] - before[what])


def merged(watches: list[Watch]) -> Watch:
    """One lane's replies as one watch (their arrivals, in order)."""
    return Watch(arrivals=sorted(t for w in watches for t in w.arrivals))


def steady_window(watches: list[Watch]) -> tuple[float, float]:
    """From just after the last reply's first event to just before the first reply's last."""
    if not watches:
        return (0.0, 0.0)
    begin = max(w.arrivals[0] for w in watches) + 0.2
    end = min(w.arrivals[-1] for w in watches) - 0.1
    if end - begin < 1.0:
        print(
            f"  the steady window is only {max(0.0, end - begin):.2f} s: "
            "replies started slower than they stream (use longer --seconds)",
            file=sys.stderr,
        )
    return (begin, max(begin, end))


async def profile(site: Site, n: int, at: float, seconds: float, what: str) -> None:
    """Sample the first worker with py-spy from `at` for `seconds`."""
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    out = ARTIFACTS / f"profile-{what}-{n}.txt"
    # py-spy is installed beside this interpreter (the venv's bin), which may not be on PATH.
    spy = Path(sys.executable).with_name("py-spy")
    process = await asyncio.create_subprocess_exec(
        str(spy) if spy.exists() else "py-spy",
        "record", "-p", str(site.pids[0]), "-d", str(max(1, int(seconds))),
        "-r", "250", "--format", "raw", "-o", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await process.wait()
    print(f"  profile ({what}) of {n} replies: {out}", file=sys.stderr)


HEADER = (
    f"{'replies':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p99 st':>7} {'p99 up':>7} "
    f"{'p99 dn':>7} {'events/s':>9} "
    f"{'frames/s':>9} {'us CPU/ev':>9} {'steady':>7} {'st s':>5} {'ms/reply':>8} {'CPU %':>6} "
    f"{'lost':>5} {'st load %':>9} {'st mach %':>9} {'st steal %':>10}"
)


def row(r: dict[str, Any]) -> str:
    return (
        f"{r['replies']:>8} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} "
        f"{r['steady_p99_ms']:>7.1f} {r['start_p99_ms']:>7.1f} {r['end_p99_ms']:>7.1f} "
        f"{r['events_per_s']:>9.0f} {r['frames_per_s']:>9.0f} {r['cpu_us_per_event']:>9.0f} "
        f"{r['steady_cpu_us_per_event']:>7.0f} {r['steady_seconds']:>5.1f} "
        f"{r['cpu_ms_per_reply']:>8.1f} "
        f"{r['server_cpu_percent']:>6.0f} {r['lost']:>5} "
        f"{r['steady_load_cpu_percent']:>9.0f} {r['steady_machine_cpu_percent']:>9.0f} "
        f"{r['steady_steal_cpu_percent']:>10.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sweep", default="50,100,150")
    parser.add_argument("--rate", type=float, default=50.0, help="events per second per reply")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each reply")
    parser.add_argument("--tokens-per-event", type=int, default=1)
    parser.add_argument("--server", choices=("daphne", "uvicorn"), default="daphne")
    parser.add_argument("--app", choices=("site", "floor"), default="site")
    parser.add_argument("--services", action="store_true", help="PostgreSQL + Redis")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--watch-other", type=float, default=0.1,
        help="with several workers, the share of replies also watched from another worker",
    )  # fmt: skip
    parser.add_argument(
        "--profile", nargs="?", const="streaming", choices=("streaming", "starting", "whole"),
        help="py-spy the first worker while the replies stream, while they start, or for the "
        "whole level",
    )  # fmt: skip
    parser.add_argument(
        "--churn", type=int, default=0, metavar="CYCLES",
        help="N lanes of CYCLES replies each, one after another, started spread over one "
        "reply's length: N in flight, starting and ending all the time (the steady figures "
        "then include every reply's handshake, send and settle)",
    )  # fmt: skip
    parser.add_argument("--out", help="append each level's figures to this JSON-lines file")
    add_traces_option(parser)
    args = parser.parse_args()
    if args.seconds < 3:
        parser.error("--seconds must be at least 3 (the steady window needs every reply streaming)")
    with (
        provider_process() as (provider_url, provider),
        collector(args.traces) as traces,
        bench_site(
            "relay", provider_url=provider_url, server=args.server, app=args.app,
            services=args.services, workers=args.workers, extra_env=traces.env,
        ) as site,
    ):  # fmt: skip
        args.provider_pid = provider.pid
        churn = f", churn ({args.churn} replies per lane)" if args.churn else ""
        traced = "" if args.traces == "off" else f", traces exported ({args.traces})"
        print(
            f"{site.description}; {args.rate:g} events/s per reply, "
            f"{args.tokens_per_event} token(s) per event, {args.seconds:g} s replies{churn}{traced}"
        )
        print(HEADER)
        for n in (int(x) for x in args.sweep.split(",")):
            result = client.run(run_level(site, n, args))
            print(row(result), flush=True)
            if args.out:
                with open(args.out, "a") as out:
                    out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
