"""SDK clients, one per event loop and configuration, so connection pools are reused."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import httpx2
from django.conf import settings

T = TypeVar("T")

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, Any]] = (
    weakref.WeakKeyDictionary()
)


def timeout() -> httpx2.Timeout:
    """The read timeout is the longest silence between two bytes of a stream."""
    return httpx2.Timeout(settings.PROVIDER_IDLE_TIMEOUT, connect=settings.PROVIDER_CONNECT_TIMEOUT)


def cached(key: Hashable, make: Callable[[], T]) -> T:
    """The client for `key` in the running loop (its pool cannot move between loops)."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    full_key = (key, settings.PROVIDER_IDLE_TIMEOUT, settings.PROVIDER_CONNECT_TIMEOUT)
    client = per_loop.get(full_key)
    if client is None:
        client = per_loop[full_key] = make()
    return client
