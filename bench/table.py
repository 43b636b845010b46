"""The relay benchmark's figures as Markdown tables (for docs/benchmarks.md).

One table per worker count and cadence, a row per server, app, start (a burst: every reply
starts within one second; churn: N always in flight) and N. "st" columns are the steady window
(burst: every reply streaming; churn: N in flight); "x floor" is the site's steady CPU per
event over the floor's at the same server, worker count, cadence, start and N; "load" is the
load generator's CPU (the clients and the fake provider), "machine" the whole machine's and
"steal" what of the machine's the hypervisor gave to other machines, in the steady window, in
percent of one core.

python -m bench.table artifacts/bench-relay.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLUMNS = (
    "server | app | start | replies | p50 ms | p99 ms | st p99 ms | start p99 ms | µs CPU/ev "
    "| st µs/ev | st x floor | ms/reply | server CPU | load CPU | machine CPU | steal | lost"
)


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (
        r["server"],
        r["workers"],
        r["rate"],
        r["tokens_per_event"],
        bool(r.get("churn")),
        r["replies"],
    )


def _percent(r: dict[str, Any], name: str) -> str:
    # Runs from before the load, machine and steal columns have none.
    return f"{r[name]:.0f}%" if name in r else ""


def _row(r: dict[str, Any], floors: dict[tuple[Any, ...], dict[str, Any]]) -> str:
    floor = floors.get(_key(r)) if r["app"] == "site" else None
    ratio = (
        f"{r['steady_cpu_us_per_event'] / floor['steady_cpu_us_per_event']:.2f}" if floor else ""
    )
    cells = [
        r["server"],
        r["app"],
        "churn" if r.get("churn") else "burst",
        str(r["replies"]),
        f"{r['p50_ms']:.1f}",
        f"{r['p99_ms']:.1f}",
        f"{r['steady_p99_ms']:.1f}",
        f"{r['start_p99_ms']:.1f}",
        f"{r['cpu_us_per_event']:.0f}",
        f"{r['steady_cpu_us_per_event']:.0f}",
        ratio,
        f"{r['cpu_ms_per_reply']:.1f}",
        _percent(r, "steady_server_cpu_percent"),
        _percent(r, "steady_load_cpu_percent"),
        _percent(r, "steady_machine_cpu_percent"),
        _percent(r, "steady_steal_cpu_percent"),
        str(r["lost"]),
    ]
    return "| " + " | ".join(cells) + " |"


def main(source: str) -> None:
    rows = [json.loads(line) for line in Path(source).read_text().splitlines() if line.strip()]
    floors = {_key(r): r for r in rows if r["app"] == "floor"}
    groups = sorted(
        {(r["workers"], r["rate"], r["tokens_per_event"]) for r in rows},
        key=lambda g: (g[0], -g[1]),
    )
    for workers, rate, tokens in groups:
        where = "one worker (SQLite, in-memory layer)" if workers == 1 else (
            f"{workers} workers (the site on PostgreSQL + Redis)"
        )  # fmt: skip
        print(f"\n#### {where}, {rate:g} events/s, {tokens} token(s) per event\n")
        print(f"| {COLUMNS} |")
        print(
            "|" + "|".join("---" if i < 3 else "--:" for i in range(COLUMNS.count("|") + 1)) + "|"
        )
        chosen = [
            r
            for r in rows
            if (r["workers"], r["rate"], r["tokens_per_event"]) == (workers, rate, tokens)
        ]
        chosen.sort(key=lambda r: (r["server"], r["app"], bool(r.get("churn")), r["replies"]))
        for r in chosen:
            print(_row(r, floors))


if __name__ == "__main__":
    main(sys.argv[1])
