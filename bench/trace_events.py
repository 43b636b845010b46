"""What traces cost per streamed event, in process: a reply's whole path with export off and on.

The path: the consumer (through the channels test communicator), the runner, the real Anthropic
SDK reading the provider's stream over HTTP (the fake provider, `bench.provider`, in a process
of its own and paced, so each event arrives on its own), the reply's text, its frames and the
socket's send. "On" is what `OTEL_EXPORTER_OTLP_ENDPOINT` makes at start (`telemetry.configure`:
the OTLP/HTTP exporter, batched, to a local collector; the global tracer provider set, so the
SDK makes its own span of the call and reads the body through its wrapper).

Each variant runs in a process of its own (the global tracer provider cannot be unset), the two
alternating. A reply of `--events` and one of 20 are read in turn, `--pairs` times; the event
loop thread's CPU per event is their difference over the difference in events, so the reply's
fixed cost (its spans included) cancels. Beside it, from one pair under `sys.setprofile`, the
Python and C function calls the loop thread makes per event, by function: a count, not a time,
so the machine's noise does not touch it. Last, what the one function that runs per event with
the SDK's spans and not without costs, timed alone: the SDK's wrapper of the response body is a
generator that passes each chunk on (`async for chunk in body: yield chunk`), timed here as a
generator of that shape.

    python -m bench.trace_events [--runs 3] [--events 1000] [--rate 500] [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHORT = 20
# Traces off; on (the site's spans, as `OTEL_EXPORTER_OTLP_ENDPOINT` makes them); on with the
# Anthropic SDK's own spans too (`TRACES_SDK_SPANS=true`).
VARIANTS = ("off", "on", "sdk")


async def _reply(user: Any, content: str) -> tuple[float, int]:
    """One reply, read whole: (the loop thread's CPU seconds, frames received)."""
    from chat import runner
    from chat.models import Conversation
    from tests.chat.helpers import connect, send, until_end

    conversation = await Conversation.objects.acreate(owner=user, model="claude-sonnet-5-5")
    tab = await connect(user, conversation)
    began = time.thread_time()
    await send(tab, type="send", content=content, client_id=uuid.uuid4().hex)
    frames = await until_end(tab, timeout=120)
    spent = time.thread_time() - began
    await runner.wait_for_replies()
    await tab.disconnect()
    assert frames[-1]["type"] == "message_stop", frames[-1]
    return spent, len(frames)


class Calls:
    """Function calls (Python and C) made by this thread while it is set, by function."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            where = code.co_filename.rsplit("site-packages/", 1)[-1].replace(str(ROOT) + "/", "")
            self.counts[f"{where}:{code.co_qualname}"] += 1
        elif event == "c_call":
            self.counts[f"(C) {getattr(arg, '__qualname__', type(arg).__name__)}"] += 1


async def _measure(user: Any, args: argparse.Namespace, prompt: Any) -> dict[str, Any]:
    short = prompt(events=SHORT, rate=args.rate)
    long = prompt(events=args.events, rate=args.rate)
    await _reply(user, short)  # warm: the client, its pool, the first queries
    per_event = []
    for _ in range(args.pairs):
        cpu_short, _ = await _reply(user, short)
        cpu_long, _ = await _reply(user, long)
        per_event.append((cpu_long - cpu_short) / (args.events - SHORT) * 1e6)
    counted = []
    frames = []
    for content in (short, long):
        calls = Calls()
        sys.setprofile(calls)
        try:
            _, got = await _reply(user, content)
        finally:
            sys.setprofile(None)
        counted.append(calls.counts)
        frames.append(got)
    events = args.events - SHORT
    each = {name: (counted[1][name] - counted[0][name]) / events for name in counted[1]}
    return {
        "us_per_event": per_event,
        "calls_per_event": sum(each.values()),
        # Those called about once per ten events or more often: what runs per event.
        "calls_by_function": {name: n for name, n in each.items() if n >= 0.1},
        "frames_per_event": (frames[1] - frames[0]) / events,
    }


async def _chunks(n: int) -> Any:
    for _ in range(n):
        yield b"x"


async def _passed_on(body: Any) -> Any:
    """The shape of the Anthropic SDK's body wrapper: each chunk passed on by a generator."""
    async for chunk in body:
        yield chunk


def wrapper_cost(chunks: int = 1_000_000) -> float:
    """Microseconds of CPU per chunk that one pass-through generator step adds."""
    import asyncio

    async def read(body: Any) -> float:
        began = time.process_time()
        async for _ in body:
            pass
        return time.process_time() - began

    costs = []
    for _ in range(3):
        bare = asyncio.run(read(_chunks(chunks)))
        wrapped = asyncio.run(read(_passed_on(_chunks(chunks))))
        costs.append((wrapped - bare) / chunks * 1e6)
    return statistics.median(costs)


def run_one(traces: str, args: argparse.Namespace) -> dict[str, Any]:
    """In this process: one variant, measured (printed as JSON for the parent)."""
    tmp = Path(tempfile.mkdtemp())
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'events.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "chatsite.settings_test"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from bench.provider import prompt
    from billing import services as billing
    from chatsite import telemetry
    from tests.fakes.otlp import Receiver

    logging.disable(logging.INFO)  # a line per reply, in the measured thread
    call_command("migrate", verbosity=0)
    settings.PROVIDERS["anthropic"].update(API_KEY="sk-ant-bench-0000", BASE_URL=args.provider)
    settings.AUTO_TITLES = False
    receiver = None
    if traces != "off":
        receiver = Receiver(keep=False)
        # What the environment makes at a server's start (the test settings drop OTEL_*).
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
        os.environ["TRACES_SDK_SPANS"] = str(traces == "sdk").lower()
        telemetry.configure()
        assert telemetry.tracer is not None
    user = get_user_model().objects.create(username="events")
    billing.coins_adjust(
        user_id=user.pk, amount=1_000_000, reason="bench", reference="bench", created_by_id=None
    )
    import uvloop

    found = uvloop.run(_measure(user, args, prompt))
    if receiver is not None:
        telemetry.flush(10_000)
        found["exported_bytes"] = receiver.size
        receiver.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="processes per variant, alternated")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500, help="events per second")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--provider", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return

    from bench.provider import provider_process

    print(
        f"replies of {args.events} events at {args.rate:g}/s against {SHORT}; "
        "the event loop thread, per streamed event:"
    )
    results: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    with provider_process() as (provider_url, _):
        for _ in range(args.runs):
            for traces in VARIANTS:
                done = subprocess.run(
                    [sys.executable, "-m", "bench.trace_events", "--one", traces,
                     "--provider", provider_url, "--events", str(args.events),
                     "--rate", str(args.rate), "--pairs", str(args.pairs)],
                    cwd=ROOT, capture_output=True, text=True, check=True,
                )  # fmt: skip
                found = json.loads(done.stdout.strip().splitlines()[-1])
                results[traces].append(found)
                shown = ", ".join(f"{x:.1f}" for x in found["us_per_event"])
                print(
                    f"  traces {traces:>3}: {shown} µs of CPU; "
                    f"{found['calls_per_event']:.1f} function calls, "
                    f"{found['frames_per_event']:.2f} frames"
                )
    for traces, runs in results.items():
        cpu = [x for run in runs for x in run["us_per_event"]]
        calls = statistics.median(run["calls_per_event"] for run in runs)
        print(
            f"traces {traces:>3}: {min(cpu):.1f} µs of CPU at least, {statistics.median(cpu):.1f}"
            f" the median; {calls:.1f} calls per event (median)"
        )
    names = {name for runs in results.values() for run in runs for name in run["calls_by_function"]}
    for variant in VARIANTS[1:]:
        print(f"functions whose calls per event differ by 0.5 or more, {variant} against off:")
        for name in sorted(names):
            off, on = (
                statistics.median(run["calls_by_function"].get(name, 0.0) for run in results[t])
                for t in ("off", variant)
            )
            if abs(on - off) >= 0.5:
                print(f"  {on - off:+.2f}  {name}")
    print(f"a generator step like the SDK's body wrapper: {wrapper_cost():.3f} µs of CPU per chunk")


if __name__ == "__main__":
    main()
