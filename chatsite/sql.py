"""Running the few statements whose meaning needs SQL, on Django's own cursor.

Everything else goes through the ORM. What stays written out, and why:
- the ledger's conditional `UPDATE ... RETURNING` (billing/services.py): a debit that cannot
  overdraw and reads the new balance in the same statement;
- the rate window's upsert (chat/limits.py): one atomic count shared by every worker;
- a person's message unless its `client_id` was sent before (`ON CONFLICT DO NOTHING`,
  chat/services.py): a resent send writes nothing, decided by the unique constraint;
- the checkpoint of all of a process's live replies in one `executemany` (chat/services.py).

The SQL runs unchanged on SQLite and PostgreSQL (the cursors take `%s` placeholders on both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.utils import timezone


def one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The first row of `sql`, or None."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row: tuple[Any, ...] | None = cursor.fetchone()
        return row


def now() -> Any:
    """The current time as the database takes it in a parameter (what `auto_now` would write)."""
    return connection.ops.adapt_datetimefield_value(timezone.now())
