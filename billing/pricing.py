"""What a reply costs, from the provider's own usage numbers and the catalogue's prices."""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, Decimal

from django.conf import settings

from providers.catalogue import ModelInfo
from providers.events import Usage

_MILLION = Decimal(1_000_000)
# The most one provider call can cost: the largest `LlmUsage.cost_usd` holds. A figure above it
# is not a real call's (a provider's absurd report, counts in the trillions).
MAX_COST_USD = Decimal("999999.99999999")


def _price(value: float) -> Decimal:
    return Decimal(str(value))


def cost_usd(model: ModelInfo, usage: Usage) -> Decimal:
    """USD for `usage`, never below zero nor above MAX_COST_USD: a provider that reports its own
    cost (OpenRouter) is taken at its word, unless its figure is unusable (below zero, not a
    number), and then the tokens are priced; a count below zero counts as none."""
    reported = usage.cost_usd
    if reported is not None and math.isfinite(reported) and reported >= 0:
        return min(Decimal(str(reported)), MAX_COST_USD)
    total = (
        max(0, usage.input_tokens) * _price(model.input_price)
        + max(0, usage.output_tokens) * _price(model.output_price)
        + max(0, usage.cache_creation_input_tokens) * _price(model.cache_write_price)
        + max(0, usage.cache_read_input_tokens) * _price(model.cache_read_price)
    )
    return min(total / _MILLION, MAX_COST_USD)


def coins_for(usd: Decimal) -> int:
    """Whole coins, rounded up: a charge is never below its cost."""
    return int((usd * settings.COINS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def estimate_input_tokens(characters: int) -> int:
    """A generous guess (about 3 characters a token, plus framing) for holds, never for bills."""
    return math.ceil(characters / 3) + 20


def hold_coins(model: ModelInfo, *, input_tokens: int, max_tokens: int) -> int:
    """The worst case of a reply: every input token plus `max_tokens` of output."""
    return coins_for(cost_usd(model, Usage(input_tokens=input_tokens, output_tokens=max_tokens)))


def affordable_max_tokens(model: ModelInfo, *, balance: int, input_tokens: int) -> int:
    """The largest `max_tokens` whose worst case `balance` can pay for (0 if not even the input)."""
    left = Decimal(balance) / settings.COINS_PER_USD - cost_usd(
        model, Usage(input_tokens=input_tokens)
    )
    per_token = _price(model.output_price) / _MILLION
    if left <= 0:
        return 0
    if per_token == 0:
        return model.max_output_tokens
    tokens = int(left / per_token)
    # Rounding coins up can make the last token unaffordable: step down until it fits.
    while tokens > 0 and hold_coins(model, input_tokens=input_tokens, max_tokens=tokens) > balance:
        tokens -= 1
    return tokens


def coins_per_thousand(model: ModelInfo) -> tuple[Decimal, Decimal]:
    """Coins per 1,000 input and output tokens: the catalogue's prices as people pay them."""
    scale = Decimal(settings.COINS_PER_USD) / 1000
    return (_price(model.input_price) * scale, _price(model.output_price) * scale)


def price_in_coins(model: ModelInfo) -> str:
    """'3 coins per 1,000 tokens in, 15 out', for the picker."""
    per_in, per_out = (_figure(value) for value in coins_per_thousand(model))
    unit = "coin" if per_in == "1" else "coins"
    return f"{per_in} {unit} per 1,000 tokens in, {per_out} out"


def _figure(value: Decimal) -> str:
    """At most three significant decimals, no trailing zeros: 15, 0.4, 0.125."""
    rounded = value.quantize(Decimal("0.001")).normalize()
    return f"{rounded:f}"


# Prices reach the page as whole numbers of this many per USD per million tokens (1.25 ->
# 12500), so its estimate does the server's arithmetic exactly (BigInt, no floating point).
PRICE_SCALE = 10_000


def scaled_price(value: float) -> int:
    scaled = _price(value) * PRICE_SCALE
    if scaled != scaled.to_integral_value():
        raise ValueError(f"a price finer than 1/{PRICE_SCALE} USD per million tokens: {value}")
    return int(scaled)
