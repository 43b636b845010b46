"""Which threads keep their database connection.

Websocket and reply work reaches the database through Channels' `database_sync_to_async`,
which runs every call in asgiref's one shared thread: with a persistent connection
(`CONN_MAX_AGE=None`, the SQLite default in settings) that thread keeps one connection instead
of opening one per call. Each HTTP request, though, runs in a thread of its own that ends with
the request (Django's `ThreadSensitiveContext`), so its connection could never be reused; this
closes it when the request finishes, as `CONN_MAX_AGE=0` would.
"""

from __future__ import annotations

from typing import Any

from django.core.signals import request_finished
from django.db import connections


def close_request_connections(**kwargs: Any) -> None:
    for connection in connections.all(initialized_only=True):
        # A test's transaction (or a caller's) stays open; Django's own handler does the same.
        if not connection.in_atomic_block:
            connection.close()


def connect() -> None:
    """Close HTTP requests' connections at their end if connections are otherwise kept."""
    if any(settings.get("CONN_MAX_AGE") != 0 for settings in connections.settings.values()):
        request_finished.connect(close_request_connections, dispatch_uid=__name__)
