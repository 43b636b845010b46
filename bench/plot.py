"""Draw the relay benchmark's p99 latency against concurrent replies (docs/relay-latency.svg).

python -m bench.plot artifacts/bench-relay.jsonl docs/relay-latency.svg
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt


def label(r: dict[str, object]) -> str:
    where = (
        "floor" if r["app"] == "floor" else ("2 workers, PG + Redis" if r["services"] else "site")
    )
    churn = ", churn (p99 with N in flight)" if r.get("churn") else ""
    return f"{r['server']}, {where}{churn}"


def main(source: str, target: str) -> None:
    rows = [json.loads(line) for line in Path(source).read_text().splitlines() if line.strip()]
    cadences = sorted({(r["rate"], r["tokens_per_event"]) for r in rows}, reverse=True)
    figure, axes = plt.subplots(1, len(cadences), figsize=(6 * len(cadences), 4.5), squeeze=False)
    for ax, (rate, tokens) in zip(axes[0], cadences, strict=True):
        series: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for r in rows:
            if (r["rate"], r["tokens_per_event"]) == (rate, tokens):
                # With churn the whole run includes its ramp and drain, when fewer than N are in
                # flight: the window with N in flight is the figure.
                p99 = r["steady_p99_ms"] if r.get("churn") else r["p99_ms"]
                series[label(r)].append((r["replies"], p99))
        for name, points in sorted(series.items()):
            points.sort()
            style = "--" if "floor" in name else "-"
            ax.plot(*zip(*points, strict=True), style, marker="o", label=name)
        ax.axhline(50, color="grey", linewidth=0.8)
        ax.axhline(100, color="grey", linewidth=0.8, linestyle=":")
        ax.set_yscale("log")
        ax.set_xlabel("concurrent replies")
        ax.set_ylabel("p99 provider-to-client latency (ms)")
        ax.set_title(f"{rate:g} events/s per reply, {tokens} token(s) per event")
        ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
