"""Ledger throughput on PostgreSQL: reply holds and captures per second, and no overspend.

Each operation is what a reply costs the ledger: one transaction that locks the account and
holds the worst case (`billing.reply_hold`), then one that releases it and captures the real
cost (`billing.reply_settle`). People run in threads, each with its own database connection:
1, 8 and 32 people at once, then 8 threads spending from one person's account (contention).
At the end every balance is checked against its ledger and against zero.

    python -m bench.ledger [--seconds 5] [--database-url postgres://postgres@127.0.0.1:5432/x]

It creates (and drops) its own throwaway database on the server named by --database-url.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.site import add_database_url, django_on_throwaway_postgres  # noqa: E402


def _people(count: int, coins: int) -> list[int]:
    from django.contrib.auth import get_user_model

    from billing import services

    ids = []
    for _ in range(count):
        user = get_user_model().objects.create(username=f"ledger-{uuid.uuid4().hex[:10]}")
        services.coins_adjust(
            user_id=user.pk, amount=coins, reason="bench", reference=f"bench:{user.pk}",
            created_by_id=None,
        )  # fmt: skip
        ids.append(user.pk)
    return ids


def _spend(user_id: int, stop_at: float, counts: list[int], refused: list[int]) -> None:
    from django.db import connection, transaction

    from billing import services
    from providers.catalogue import get_model
    from providers.events import Usage

    model = get_model("claude-haiku-5-5")
    done = no = 0
    try:
        while time.monotonic() < stop_at:
            reference = f"bench:{uuid.uuid4().hex}"
            try:
                with transaction.atomic():
                    hold = services.reply_hold(
                        user_id=user_id, model=model, input_characters=400, max_tokens=1_000,
                        reference=f"{reference}:hold", conversation_id=1, message_id=1,
                    )  # fmt: skip
            except services.InsufficientCoins:
                no += 1
                continue
            with transaction.atomic():
                services.reply_settle(
                    user_id=user_id, model=model,
                    usage=Usage(input_tokens=120, output_tokens=300), hold=hold,
                    reference=reference, conversation_id=1, message_id=1,
                )  # fmt: skip
            done += 1
    finally:
        counts.append(done)
        refused.append(no)
        connection.close()


def run(people: list[int], threads_per_person: int, seconds: float) -> dict[str, Any]:
    counts: list[int] = []
    refused: list[int] = []
    stop_at = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_spend, args=(user_id, stop_at, counts, refused))
        for user_id in people
        for _ in range(threads_per_person)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"replies": sum(counts), "per_s": sum(counts) / elapsed, "refused": sum(refused)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    add_database_url(parser)
    args = parser.parse_args()
    with django_on_throwaway_postgres(args.database_url):
        from billing.models import CoinAccount
        from billing.services import reconcile

        print(f"ledger on PostgreSQL, {args.seconds:g} s per level; one hold + one settle each")
        print(f"{'people':>7} {'threads':>8} {'replies/s':>10} {'refused':>8}")
        for people, per_person in ((1, 1), (8, 1), (32, 1), (1, 8)):
            # Contention: one person with little money, so holds race for the last coins.
            coins = 200 if per_person > 1 else 10_000_000
            r = run(_people(people, coins), per_person, args.seconds)
            print(f"{people:>7} {people * per_person:>8} {r['per_s']:>10.0f} {r['refused']:>8}")
        negative = CoinAccount.objects.filter(balance__lt=0).count()
        drift = reconcile()
        print(
            f"accounts below zero: {negative}; balances differing from their ledger: {len(drift)}"
        )
        if negative or drift:
            raise SystemExit("overspend or ledger drift")


if __name__ == "__main__":
    main()
