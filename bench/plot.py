"""Draw the relay benchmark's p99 latency against concurrent replies (docs/relay-latency.svg).

One panel per worker count (rows) and cadence (columns); colour is the server, line style the
app (site or floor) and how the replies start: a burst (all within one second; the whole
run's p99) or churn (N always in flight, starting and ending as they go; the p99 while N are
in flight).

python -m bench.plot artifacts/bench-relay.jsonl docs/relay-latency.svg
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt

COLOURS = {"daphne": "tab:blue", "uvicorn": "tab:orange"}
STYLES = {
    ("site", False): "-",
    ("site", True): "-.",
    ("floor", False): "--",
    ("floor", True): ":",
}


def label(r: dict[str, Any]) -> str:
    start = "churn" if r.get("churn") else "burst"
    return f"{r['server']}, {r['app']}, {start}"


def p99(r: dict[str, Any]) -> float:
    # With churn the whole run includes its ramp and drain, when fewer than N are in flight:
    # the window with N in flight is the figure.
    return float(r["steady_p99_ms"] if r.get("churn") else r["p99_ms"])


def main(source: str, target: str) -> None:
    rows = [json.loads(line) for line in Path(source).read_text().splitlines() if line.strip()]
    cadences = sorted({(r["rate"], r["tokens_per_event"]) for r in rows}, reverse=True)
    workers = sorted({r["workers"] for r in rows})
    figure, axes = plt.subplots(
        len(workers), len(cadences), figsize=(6 * len(cadences), 4 * len(workers)), squeeze=False
    )
    for row_axes, count in zip(axes, workers, strict=True):
        for ax, (rate, tokens) in zip(row_axes, cadences, strict=True):
            series: dict[str, list[tuple[int, float]]] = defaultdict(list)
            looks: dict[str, tuple[str, str]] = {}
            for r in rows:
                if (r["rate"], r["tokens_per_event"], r["workers"]) == (rate, tokens, count):
                    series[label(r)].append((r["replies"], p99(r)))
                    looks[label(r)] = (
                        COLOURS.get(r["server"], "black"),
                        STYLES[(r["app"], bool(r.get("churn")))],
                    )
            for name, points in sorted(series.items()):
                points.sort()
                colour, style = looks[name]
                ax.plot(*zip(*points, strict=True), style, color=colour, marker="o", label=name)
            limit = 50 if count == 1 else 100
            ax.axhline(limit, color="grey", linewidth=0.8)
            ax.set_yscale("log")
            ax.set_xlabel("concurrent replies")
            ax.set_ylabel("p99 provider-to-client latency (ms)")
            where = "one worker, SQLite"
            if count > 1:
                where = f"{count} workers, the site on PostgreSQL + Redis"
            ax.set_title(f"{where}: {rate:g} events/s, {tokens} token(s) per event", fontsize=10)
            ax.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
