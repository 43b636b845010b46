"""A real race on PostgreSQL: many threads holding one person's coins at once never overspend."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.db.models import Sum

from billing import services
from billing.models import LedgerEntry
from billing.services import InsufficientCoins
from providers.catalogue import get_model

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_holds_never_overspend(alice: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks (runs in `make test-services`)")
    model = get_model("claude-opus-5-5")  # about 100 coins a hold: ten fit in 1000
    threads, results = 24, []
    barrier = threading.Barrier(threads)
    lock = threading.Lock()

    def hold(n: int) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                held = services.reply_hold(
                    user_id=alice.pk, model=model, input_characters=3000, max_tokens=4096,
                    reference=f"race:{n}", conversation_id=1, message_id=n,
                )  # fmt: skip
            with lock:
                results.append(held.amount)
        except InsufficientCoins:
            with lock:
                results.append(0)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=hold, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    balance = services.balance_of(user_id=alice.pk)
    assert len(results) == threads
    assert 0 < sum(1 for r in results if r) < threads  # some won, some were refused
    assert balance >= 0
    assert balance == 1000 - sum(results)
    assert (
        balance == LedgerEntry.objects.filter(account__user=alice).aggregate(s=Sum("amount"))["s"]
    )
