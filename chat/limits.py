"""Per-person limits in the store every worker shares (the database): paid actions per minute
and open sockets. One reply in flight per conversation is a database constraint (chat/models.py).
"""

from __future__ import annotations

import datetime as dt
import math
import time

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from chat.models import OpenSocket, RateWindow
from chatsite import sql

# A socket's row counts while its hub renewed it within this long (hubs renew every
# REPLY_SWEEP_INTERVAL seconds).
SOCKET_LEASE = 120.0

# One atomic count per person and minute, shared by every worker: SQL for its meaning
# (chatsite/sql.py).
_UPSERT = (
    f"INSERT INTO {RateWindow._meta.db_table} (user_id, action, minute, count) "
    "VALUES (%s, %s, %s, 1) "
    "ON CONFLICT (user_id, action, minute) "
    f"DO UPDATE SET count = {RateWindow._meta.db_table}.count + 1 "
    "RETURNING count"
)


def paid_action_wait(*, user_id: int, now: float | None = None) -> float | None:
    """Count one send or retry; the seconds to wait if it is over the per-minute limit."""
    return action_wait(user_id=user_id, action="send", limit=settings.SENDS_PER_MINUTE, now=now)


def action_wait(*, user_id: int, action: str, limit: int, now: float | None = None) -> float | None:
    """Count one `action` of the person; the seconds to wait if it is over `limit` a minute
    (0 or less: no limit)."""
    if limit <= 0:
        return None
    moment = time.time() if now is None else now
    minute = int(moment // 60)
    row = sql.one(_UPSERT, [user_id, action, minute])
    count = int(row[0]) if row else 1
    if count <= limit:
        return None
    return max(1.0, math.ceil((minute + 1) * 60 - moment))


def windows_forget_old(*, now: float | None = None) -> int:
    """Drop finished windows (called by each worker's sweep)."""
    minute = int((time.time() if now is None else now) // 60)
    return RateWindow.objects.filter(minute__lt=minute - 1).delete()[0]


@transaction.atomic(savepoint=False)
def socket_open(*, user_id: int, hub: str, conversation_id: int) -> int | None:
    """Record a socket open on `hub` showing the conversation; None (and nothing recorded) if
    the person has too many."""
    now = timezone.now()
    opened = OpenSocket.objects.create(
        user_id=user_id, hub=hub, conversation_id=conversation_id, seen_at=now
    )
    live = OpenSocket.objects.filter(user_id=user_id, seen_at__gte=_lease_start(now)).count()
    if live > settings.SOCKETS_PER_PERSON:
        opened.delete()
        return None
    return opened.pk


def socket_close(*, socket_id: int) -> None:
    OpenSocket.objects.filter(pk=socket_id).delete()


def hubs_showing(*, conversation_id: int, besides: str) -> list[str]:
    """The other hubs (worker processes) with a socket open on the conversation."""
    rows = (
        OpenSocket.objects.filter(
            conversation_id=conversation_id, seen_at__gte=_lease_start(timezone.now())
        )
        .exclude(hub=besides)
        .values_list("hub", flat=True)
        .distinct()
    )
    return list(rows)


def hubs_of_person(
    *, user_id: int, conversation_id: int, besides: str
) -> tuple[list[str], list[str]]:
    """The other hubs (worker processes) with a socket of the person open: those showing the
    conversation, and all of them (one query; a reply tells the first of its start and all of
    them of the balance it leaves)."""
    rows = _persons_sockets_elsewhere(user_id, besides).values_list("hub", "conversation_id")
    showing, every = set(), set()
    for hub, shown in rows:
        every.add(hub)
        if shown == conversation_id:
            showing.add(hub)
    return sorted(showing), sorted(every)


def hubs_with_person(*, user_id: int, besides: str) -> list[str]:
    """The other hubs with a socket of the person open (on any conversation)."""
    return list(_persons_sockets_elsewhere(user_id, besides).values_list("hub", flat=True))


def _persons_sockets_elsewhere(user_id: int, besides: str) -> QuerySet[OpenSocket]:
    live = OpenSocket.objects.filter(user_id=user_id, seen_at__gte=_lease_start(timezone.now()))
    return live.exclude(hub=besides).order_by().distinct()


def _lease_start(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(seconds=SOCKET_LEASE)


def sockets_renew(*, hub: str) -> None:
    """A hub's sockets are still open; rows no hub renewed lately are removed."""
    now = timezone.now()
    OpenSocket.objects.filter(hub=hub).update(seen_at=now)
    OpenSocket.objects.filter(seen_at__lt=now - dt.timedelta(seconds=SOCKET_LEASE)).delete()
