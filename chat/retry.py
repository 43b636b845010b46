"""When to try a provider again: only before the first delta reached anyone (DESIGN invariant 6).

The SDKs' own retries are off (max_retries=0) so this is the one place the policy lives.
"""

from __future__ import annotations

import asyncio
import random

from providers.errors import ProviderError

MAX_ATTEMPTS = 3
BASE_DELAY = 0.5
MAX_DELAY = 8.0
# A provider asking to wait longer than this gets no automatic retry: the person decides.
MAX_RETRY_AFTER = 20.0

# Replaced by tests with a recording fake clock: waits are asserted, never slept.
sleep = asyncio.sleep


def retry_delay(
    error: ProviderError, *, attempt: int, produced_output: bool, rng: random.Random
) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when this error must not be retried."""
    if produced_output or not error.retryable or attempt >= MAX_ATTEMPTS:
        return None
    if error.retry_after is not None:
        return error.retry_after if error.retry_after <= MAX_RETRY_AFTER else None
    backoff = min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1))
    # Full jitter in the upper half, so many replies failing together do not retry together.
    return backoff * rng.uniform(0.5, 1.0)
