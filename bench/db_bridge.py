"""The bridge to the database thread: CPU per trip of Channels' `database_sync_to_async` and of
`chatsite.database_thread.call`, the one the site uses, around the same small statement.

A reply makes three trips to the database thread and a socket two; each bridge's own cost is
paid in the event loop and in the GIL it shares with every stream. The process's CPU (both
threads) is read around each batch of trips, one trip after another on the server's event
loop (uvloop), the two bridges alternated batch by batch so the machine's drift falls on both.

    python -m bench.db_bridge [--trips 3000] [--rounds 5] [--services]

`--services` runs on PostgreSQL (a fresh database, the site's pool); the default is the
embedded SQLite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.site import _database  # noqa: E402
from tests.e2e.servers import manage, site_env  # noqa: E402

UNUSED = "http://127.0.0.1:9"  # no provider is called


def measure(trips: int, rounds: int) -> dict[str, list[float]]:
    """µs of CPU per trip of each bridge, one figure per round (run inside a process with the
    site's settings)."""

    import django
    import uvloop

    django.setup()
    from channels.db import database_sync_to_async
    from django.db import connection

    from chatsite import database_thread

    def statement() -> Any:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()

    async def channels_bridge() -> Any:
        return await database_sync_to_async(statement)()

    async def site_bridge() -> Any:
        return await database_thread.call(statement)

    bridges = {"database_sync_to_async": channels_bridge, "database_thread.call": site_bridge}

    async def run() -> dict[str, list[float]]:
        spent: dict[str, list[float]] = {name: [] for name in bridges}
        for bridge in bridges.values():  # warm up: connections, caches
            for _ in range(200):
                await bridge()
        for _ in range(rounds):
            for name, bridge in bridges.items():
                started = time.process_time()
                for _ in range(trips):
                    await bridge()
                spent[name].append((time.process_time() - started) / trips * 1e6)
        return spent

    return uvloop.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trips", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--services", action="store_true", help="PostgreSQL")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # the child process, with the site's settings in its environment
        spent = measure(args.trips, args.rounds)
        where = "PostgreSQL" if os.environ["DATABASE_URL"].startswith("postgres") else "SQLite"
        parts = ", ".join(
            f"{name} {statistics.median(rounds):.0f} ({min(rounds):.0f}-{max(rounds):.0f})"
            for name, rounds in spent.items()
        )
        print(
            f"{where}: µs of CPU per trip to the database thread and back, one SELECT 1 each, "
            f"median of {args.rounds} rounds of {args.trips} (range): {parts}"
        )
        return
    tmp = Path(tempfile.mkdtemp())
    with _database(args.services, tmp) as database_url:
        env = site_env(database_url=database_url, provider_url=UNUSED, static_root=tmp)
        manage(env, "migrate", "--noinput")
        command = [sys.executable, "-m", "bench.db_bridge", "--measure"]
        command += ["--trips", str(args.trips), "--rounds", str(args.rounds)]
        subprocess.run(command, cwd=ROOT, env=env, check=True)


if __name__ == "__main__":
    main()
