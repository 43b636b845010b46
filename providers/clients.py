"""SDK clients, one per event loop and configuration, over one connection pool per SDK and loop.

Making an HTTP client blocks the event loop while its TLS context loads the CA bundle, time in
which no frame of any reply is relayed (docs/benchmarks.md). So the TLS context is made once
per process and each SDK's HTTP client (its connection pool) once per loop, shared by every key
and endpoint: a person's own key then costs only the SDK's light client object, of which the
most recently used `MAX_CLIENTS` are kept.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import httpx2
from django.conf import settings

T = TypeVar("T")

# SDK clients kept per loop (one per key and endpoint in use); an evicted one is made again.
MAX_CLIENTS = 1024

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OrderedDict[Hashable, Any]] = (
    weakref.WeakKeyDictionary()
)
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, Any]] = (
    weakref.WeakKeyDictionary()
)


def timeout() -> httpx2.Timeout:
    """The read timeout is the longest silence between two bytes of a stream."""
    return httpx2.Timeout(settings.PROVIDER_IDLE_TIMEOUT, connect=settings.PROVIDER_CONNECT_TIMEOUT)


@functools.cache
def tls() -> ssl.SSLContext:
    """The TLS context of every provider connection: the SDKs' own default, made once."""
    return httpx2.create_ssl_context()


def _timeouts() -> tuple[float, float]:
    return (settings.PROVIDER_IDLE_TIMEOUT, settings.PROVIDER_CONNECT_TIMEOUT)


def pool(sdk: str, make: Callable[[], T]) -> T:
    """The running loop's HTTP client for `sdk` (its connections cannot move between loops)."""
    per_loop = _pools.setdefault(asyncio.get_running_loop(), {})
    key = (sdk, *_timeouts())
    client = per_loop.get(key)
    if client is None:
        client = per_loop[key] = make()
    return client


def cached(key: Hashable, make: Callable[[], T]) -> T:
    """The SDK client for `key` in the running loop, made on first use."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), OrderedDict())
    full_key = (key, *_timeouts())
    client = per_loop.get(full_key)
    if client is None:
        client = per_loop[full_key] = make()
        if len(per_loop) > MAX_CLIENTS:
            per_loop.popitem(last=False)
    else:
        per_loop.move_to_end(full_key)
    return client
