"""Search (chat/search.py) on PostgreSQL: one person with 10,000 conversations of 20 messages,
among other people's conversations.

Fills a throwaway database (one INSERT ... SELECT over generate_series per table) with the
searcher's `--conversations` conversations of `--messages` messages and `--others` times as
many of other people's. Each message is 40 words drawn from a 5,000-word vocabulary with a
skewed (Zipf-like) frequency, as text is: a few words are in almost every message, most are
rare. Then `search.search` (the list page's whole search: titles, messages, snippets) runs
`--runs` times for each kind of query, and the p50 / p95 / max are printed per kind and over
all. The issue asks for a p95 under 100 ms.

    python -m bench.search [--conversations 10000] [--messages 20] [--others 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.site import add_database_url, django_on_throwaway_postgres  # noqa: E402

VOCABULARY = 5_000
WORDS_PER_MESSAGE = 40
# Each kind of query, and the words searched for (`w<rank>`: rank 0 is the commonest word).
QUERIES = {
    "very common word": "w0",
    "common word": "w40",
    "rare word": "w3500",
    "two words": "w60 w300",
    "three words": "w5 w90 w700",
    "word in titles": "topic7",
    "no match": "nowhere",
    "long query": " ".join(f"w{n}" for n in range(100, 400, 3)),
}


def _fill(conversations: int, messages: int, others: int) -> int:
    """The searcher (the first person) and `others` more people with as many conversations;
    the searcher's id."""
    from django.db import connection

    people = 1 + others
    total = conversations * people
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) "
            "SELECT '!', false, 'person' || n, '', '', '', false, true, now() "
            "FROM generate_series(1, %s) AS n",
            [people],
        )
        cursor.execute("SELECT min(id) FROM auth_user")
        first_user = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO chat_conversation (owner_id, title, title_by_person, model, model_note,"
            " created_at, updated_at) "
            "SELECT %s + (n - 1) %% %s, 'Chat on topic' || (n %% 500) || ' and w' || (n %% 997),"
            " false, 'demo', '', now() - n * interval '1 minute', now() - n * interval '1 minute'"
            " FROM generate_series(1, %s) AS n",
            [first_user, people, total],
        )
        cursor.execute("SELECT min(id) FROM chat_conversation")
        first_conversation = cursor.fetchone()[0]
        # The words: rank = floor(V * u^3) for u spread evenly over [0, 1) (a hash of the
        # message and the word's place), so rank 0 is the commonest. One row per message,
        # each following the one before it.
        cursor.execute(
            f"""
            INSERT INTO chat_message (conversation_id, parent_id, role, content, thinking,
                thinking_signature, status, model, provider, byok, stop_reason, error_code,
                error_message, client_id, hub, unsettled, created_at, updated_at)
            SELECT %s + (m / %s), NULL,
                CASE WHEN m %% 2 = 0 THEN 'user' ELSE 'assistant' END,
                (SELECT string_agg('w' || floor({VOCABULARY} * power(
                    (hashtext(m || '/' || i)::bigint + 2147483648) / 4294967296.0, 3))::int, ' ')
                 FROM generate_series(1, {WORDS_PER_MESSAGE}) AS i),
                '', '', 'complete', 'demo', 'demo', false, '', '', '', '', '', false,
                now(), now()
            FROM generate_series(0, %s - 1) AS m
            """,
            [first_conversation, messages, total * messages],
        )
        cursor.execute(
            "UPDATE chat_message SET parent_id = id - 1 WHERE id NOT IN "
            "(SELECT min(id) FROM chat_message GROUP BY conversation_id)"
        )
        cursor.execute(
            "UPDATE chat_conversation c SET current_leaf_id = last.id FROM "
            "(SELECT conversation_id, max(id) AS id FROM chat_message GROUP BY conversation_id)"
            " AS last WHERE last.conversation_id = c.id"
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE chat_message")
        cursor.execute("VACUUM ANALYZE chat_conversation")
    return int(first_user)


def _time(owner_id: int, runs: int) -> list[float]:
    from chat import search

    every: list[float] = []
    for label, query in QUERIES.items():
        times, found = [], 0
        for _ in range(runs):
            began = time.perf_counter()
            found = len(search.search(owner_id=owner_id, query=query).results)
            times.append((time.perf_counter() - began) * 1000)
        every += times
        print(f"{label:<18} {_figures(times)}; {found} conversations found")
    return every


def _figures(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return f"p50 {statistics.median(ordered):6.1f} ms, p95 {p95:6.1f} ms, max {ordered[-1]:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--others", type=int, default=2, help="other people, as many each")
    parser.add_argument("--runs", type=int, default=20)
    add_database_url(parser)
    args = parser.parse_args()
    with django_on_throwaway_postgres(args.database_url):
        began = time.perf_counter()
        owner_id = _fill(args.conversations, args.messages, args.others)
        people = 1 + args.others
        print(
            f"{args.conversations:,} conversations of {args.messages} messages for the searcher, "
            f"{people * args.conversations * args.messages:,} messages in all, "
            f"filled in {time.perf_counter() - began:.0f} s"
        )
        _time(owner_id, 2)  # warm the caches as a running site has them
        every = _time(owner_id, args.runs)
        print(f"{'all queries':<18} {_figures(every)}")


if __name__ == "__main__":
    main()
