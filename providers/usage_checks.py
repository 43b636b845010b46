"""A provider's usage figures, checked where the adapter reads them, before anything bills them.

Providers are not trusted to report sane numbers: a count below zero, above what the model can
take or write, beyond the columns that store it, or not a whole number; a cost below zero, not
a number, or far above what the tokens cost. Each such figure is logged (numbers only) and
replaced:

- an input count that cannot be used: the input is estimated from the request's text (about four
  characters a token), the cache counts taken as none;
- an output count that cannot be used: the stream's usage is marked not final, so the bill
  estimates the output from the text the person received (chat/settlement.py); a completion's
  output is estimated from its text here;
- a cost that cannot be used: dropped, so the tokens are priced from the catalogue.

So a reply is billed from figures that are each within the model's limits, never below zero,
and never credits a person (billing/pricing.py holds the same line once more).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

from providers.base import ChatRequest
from providers.catalogue import find_model
from providers.events import Usage

logger = logging.getLogger(__name__)

# The largest count the usage columns hold (LlmUsage and Message: PositiveIntegerField).
MAX_COUNT = 2**31 - 1
# A reported cost above this many times what its tokens cost at the catalogue's prices (plus a
# cent, for free models) is not a real charge.
COST_SLACK = 2.0
_INPUTS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")

# A count an adapter found that is no whole number (text, a fraction, true): never usable.
NOT_A_COUNT = -1


def count(value: object) -> int | None:
    """A reported count as an int: None when absent, NOT_A_COUNT when it is no whole number."""
    if value is None:
        return None
    if isinstance(value, bool):
        return NOT_A_COUNT
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return NOT_A_COUNT


def estimate_tokens(characters: int) -> int:
    """Tokens of `characters` characters of text, about four to a token."""
    return math.ceil(characters / 4)


class UsageCheck:
    """Checks one call's reported usage against its request and model; each problem is logged
    once per call."""

    def __init__(self, request: ChatRequest, *, provider: str) -> None:
        self.request = request
        self.provider = provider
        model = find_model(request.model)
        self.model = model
        self.input_limit = min(MAX_COUNT, model.context_window) if model else MAX_COUNT
        self.output_limit = min(MAX_COUNT, model.max_output_tokens) if model else MAX_COUNT
        # Whether the last usage checked had an output count to bill from.
        self.output_usable = True
        self._warned: set[str] = set()

    def __call__(self, usage: Usage) -> Usage:
        """`usage` with every figure usable (a new object; `usage` is left as it is)."""
        checked = replace(usage)
        inputs = [getattr(usage, name) for name in _INPUTS]
        if not all(0 <= n <= self.input_limit for n in inputs) or sum(inputs) > self.input_limit:
            self._warn("input", dict(zip(_INPUTS, inputs, strict=True)))
            checked.input_tokens = self._input_estimate()
            checked.cache_creation_input_tokens = checked.cache_read_input_tokens = 0
        self.output_usable = 0 <= usage.output_tokens <= self.output_limit
        if not self.output_usable:
            self._warn("output", {"output_tokens": usage.output_tokens})
            checked.output_tokens = 0
        if usage.cost_usd is not None and not self._cost_usable(usage.cost_usd, checked):
            self._warn("cost", {"cost_usd": usage.cost_usd})
            checked.cost_usd = None
        return checked

    def completion(self, usage: Usage, text: str) -> Usage:
        """A whole reply's usage: an unusable output count is estimated from its text."""
        checked = self(usage)
        if not self.output_usable:
            checked.output_tokens = min(self.output_limit, estimate_tokens(len(text)))
        return checked

    def _input_estimate(self) -> int:
        characters = sum(len(m.content) for m in self.request.messages)
        characters += len(self.request.system or "")
        return min(self.input_limit, estimate_tokens(characters))

    def _cost_usable(self, cost: float, usage: Usage) -> bool:
        if not math.isfinite(cost) or cost < 0:
            return False
        if self.model is None:
            return True  # nothing to compare with; billing/pricing.py still caps it
        priced = (
            usage.input_tokens * self.model.input_price
            + usage.output_tokens * self.model.output_price
            + usage.cache_creation_input_tokens * self.model.cache_write_price
            + usage.cache_read_input_tokens * self.model.cache_read_price
        ) / 1_000_000
        return cost <= priced * COST_SLACK + 0.01

    def _warn(self, what: str, figures: dict[str, object]) -> None:
        if what in self._warned:
            return
        self._warned.add(what)
        logger.warning(
            "%s reported an unusable %s figure for %s: %s (billed from %s)",
            self.provider,
            what,
            self.request.model,
            figures,
            "the tokens' price" if what == "cost" else "an estimate",
        )
