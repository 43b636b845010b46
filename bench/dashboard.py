"""The admin dashboard's queries on a million provider calls, on PostgreSQL.

Fills a throwaway database with `--rows` `LlmUsage` rows (default 1,000,000) spread over 90
days, 2,000 people and every catalogue model, with errors, titles and own-key calls in about the
shares a site sees, then times `billing.dashboard.dashboard` (its five queries) over the last 7,
30 and 90 days, and over 30 days of one model, each run three times (the first just after
`VACUUM ANALYZE`). Prints each query's time and the whole page's; the issue asks for under 1 s.

    python -m bench.dashboard [--rows 1000000] [--database-url postgres://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.site import add_database_url, django_on_throwaway_postgres  # noqa: E402

PEOPLE = 2_000
DAYS = 90
RUNS = 3


def _fill(rows: int) -> None:
    """People, then `rows` calls made by one INSERT ... SELECT over generate_series (the
    fastest way in; the rows' figures vary as a site's do, not at random)."""
    from django.db import connection

    from billing.models import LlmUsage
    from providers.catalogue import CATALOGUE

    models = [m for m in CATALOGUE if m.retires_on is None]
    ids = "ARRAY[" + ",".join(f"'{m.id}'" for m in models) + "]"
    providers = "ARRAY[" + ",".join(f"'{m.provider}'" for m in models) + "]"
    table = LlmUsage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) "
            "SELECT '!', false, 'person' || n, '', '', '', false, true, now() "
            "FROM generate_series(1, %s) AS n",
            [PEOPLE],
        )
        cursor.execute("SELECT min(id) FROM auth_user")
        first_user = cursor.fetchone()[0]
        cursor.execute(
            f"""
            INSERT INTO {table} (
                user_id, conversation_id, message_id, provider, model, byok, purpose, status,
                error_code, attempt, input_tokens, output_tokens, cache_creation_input_tokens,
                cache_read_input_tokens, usage_estimated, time_to_first_token_ms, duration_ms,
                cost_usd, coins_charged, created_at)
            SELECT
                %s + (n * 7919) %% %s,
                n / 4,
                n,
                ({providers})[1 + n %% {len(models)}],
                ({ids})[1 + n %% {len(models)}],
                n %% 11 = 0,
                CASE WHEN n %% 9 = 0 THEN 'title' ELSE 'reply' END,
                CASE WHEN n %% 37 = 0 THEN 'error' WHEN n %% 53 = 0 THEN 'stopped' ELSE 'ok' END,
                CASE WHEN n %% 37 = 0 THEN
                    (ARRAY['overloaded','rate_limited','timeout','provider_error'])[1 + n %% 4]
                ELSE '' END,
                1,
                200 + (n * 31) %% 6000,
                CASE WHEN n %% 37 = 0 THEN 0 ELSE 20 + (n * 17) %% 1500 END,
                0, 0, false,
                CASE WHEN n %% 37 = 0 THEN NULL ELSE 250 + (n * 13) %% 2500 END,
                1000 + (n * 7) %% 30000,
                ((n * 3) %% 900) / 100000.0,
                CASE WHEN n %% 11 = 0 OR n %% 37 = 0 THEN 0 ELSE 1 + (n * 3) %% 9 END,
                now() - (n %% {DAYS}) * interval '1 day' - (n %% 86400) * interval '1 second'
            FROM generate_series(1::bigint, %s) AS n
            """,
            [first_user, PEOPLE, rows],
        )
    # As autovacuum leaves a table that is only ever added to (its visibility map set, so an
    # index alone can answer a query); outside a transaction, as VACUUM must be.
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {table}")


def _time(label: str, start: dt.date, end: dt.date, **only: str) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.dashboard import dashboard

    for run in range(RUNS):
        with CaptureQueriesContext(connection) as queries:
            began = time.perf_counter()
            shown = dashboard(start, end, **only)
            elapsed = time.perf_counter() - began
        each = " ".join(f"{float(q['time']) * 1000:6.0f}" for q in queries.captured_queries)
        print(
            f"{label:<22} run {run + 1}: {elapsed * 1000:6.0f} ms for the page "
            f"({len(queries.captured_queries)} queries, ms each: {each}); "
            f"{shown.totals.calls:,} calls"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    add_database_url(parser)
    args = parser.parse_args()
    with django_on_throwaway_postgres(args.database_url):
        from django.utils import timezone

        began = time.perf_counter()
        _fill(args.rows)
        print(
            f"{args.rows:,} LlmUsage rows over {DAYS} days in {time.perf_counter() - began:.0f} s"
        )
        today = timezone.localdate()
        for days in (7, 30, 90):
            _time(f"last {days} days", today - dt.timedelta(days=days - 1), today)
        _time(
            "30 days, one model",
            today - dt.timedelta(days=29),
            today,
            model="claude-sonnet-5-5",
        )


if __name__ == "__main__":
    main()
