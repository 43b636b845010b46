"""How fast this machine is right now: one fixed piece of pure-Python work, timed.

The machine these benchmarks run on has run the same code at very different speeds, between
runs and within one (docs/benchmarks.md, ninth measurement). `make bench` prints this figure
before and after its runs, so that figures from two runs can be compared knowing whether the
machine itself was slower. The work is what a relay does most of, in miniature: parse one
streamed event's JSON, read its text, build the frame sent on and serialise it.

    python -m bench.machine [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

EVENT = (
    '{"type":"content_block_delta","index":0,'
    '"delta":{"type":"text_delta","text":"Hello, world <1733400000.123456>"}}'
)


def _work(rounds: int) -> None:
    for i in range(rounds):
        event = json.loads(EVENT)
        text = event["delta"]["text"]
        json.dumps({"type": "text_delta", "message_id": i, "offset": i * 7, "text": text})


def microseconds_per_round(seconds: float) -> float:
    """The median over several samples of the CPU time of one round of the work."""
    rounds, samples = 2_000, list[float]()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or len(samples) < 5:
        started = time.process_time()
        _work(rounds)
        samples.append((time.process_time() - started) / rounds * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    figure = microseconds_per_round(args.seconds)
    print(f"machine: {figure:.2f} µs of CPU per reference round (parse an event, send a frame)")


if __name__ == "__main__":
    main()
