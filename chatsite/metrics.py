"""Prometheus metrics: what the site counts, and `GET /metrics` to read them.

Counted per reply, per provider call, per socket or per relay message, never per streamed
event. `/metrics` answers only a bearer of `METRICS_TOKEN` (without it set, or without the
token, it is a 404, as if it did not exist).

Several worker processes: with `PROMETHEUS_MULTIPROC_DIR` set (an empty directory the workers
of one host share, emptied before they start), the values live in files there and any
worker's `/metrics` reports the sum over all of them (the Prometheus client's multiprocess
mode; gauges add up the live processes). Without it, each worker reports its own: scrape each
worker's own address.
"""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

_SECONDS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32)
_LONG_SECONDS = (0.5, 1, 2, 5, 10, 20, 40, 80, 160, 320, 600, 1800)

REPLIES_IN_FLIGHT = Gauge(
    "chat_replies_in_flight", "Replies being written now.", multiprocess_mode="livesum"
)
REPLIES = Counter(
    "chat_replies", "Replies ended, by model and how they ended.", ["model", "status"]
)
TIME_TO_FIRST_TOKEN = Histogram(
    "chat_time_to_first_token_seconds",
    "From a reply's provider call to its first streamed text, by model.",
    ["model"],
    buckets=_SECONDS,
)
REPLY_DURATION = Histogram(
    "chat_reply_duration_seconds",
    "A reply's whole time, all its rounds and tools, by model.",
    ["model"],
    buckets=_LONG_SECONDS,
)
TOKENS = Counter(
    "chat_tokens",
    "Tokens of replies, by model and direction (input, output).",
    ["model", "direction"],
)
COINS = Counter("chat_coins", "Coins charged for replies, by model.", ["model"])
PROVIDER_ERRORS = Counter(
    "chat_provider_errors",
    "Failed provider calls, by provider and error code.",
    ["provider", "code"],
)
RETRIES = Counter("chat_retries", "Provider calls tried again, by provider.", ["provider"])
TOOL_CALLS = Counter("chat_tool_calls", "Tool calls run, by outcome (ok, error).", ["outcome"])
OPEN_SOCKETS = Gauge("chat_open_sockets", "Open chat sockets.", multiprocess_mode="livesum")
SOCKETS_LAGGING = Counter(
    "chat_sockets_closed_lagging", "Sockets closed for falling too far behind (they resync)."
)
RELAY_MESSAGES = Counter(
    "chat_relay_messages",
    "Messages between worker processes, by direction (sent, received) and kind.",
    ["direction", "kind"],
)


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    # Every worker's files, summed (a fresh registry each scrape, as the client asks).
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def process_ended(pid: int) -> None:
    """A worker process is going away: its live gauges stop counting (multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token or not hmac.compare_digest(_bearer(request).encode(), token.encode()):
        raise Http404()
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
