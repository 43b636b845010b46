from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing import pricing
from providers.catalogue import CATALOGUE, ModelInfo, get_model
from providers.events import Usage


def test_charges_round_up_to_whole_coins() -> None:
    assert pricing.coins_for(Decimal("0.0000001")) == 1
    assert pricing.coins_for(Decimal("0.001")) == 1
    assert pricing.coins_for(Decimal("0.0011")) == 2
    assert pricing.coins_for(Decimal(0)) == 0


def test_cache_tokens_are_priced_and_a_reported_cost_wins() -> None:
    sonnet = get_model("claude-sonnet-5-5")
    usage = Usage(input_tokens=1000, output_tokens=0, cache_read_input_tokens=10_000)
    assert pricing.cost_usd(sonnet, usage) == Decimal("0.006")
    assert pricing.cost_usd(sonnet, Usage(output_tokens=10**6, cost_usd=0.5)) == Decimal("0.5")


@given(
    model=st.sampled_from(CATALOGUE),
    balance=st.integers(0, 10**7),
    input_tokens=st.integers(0, 10**6),
)
def test_affordable_max_tokens_is_the_largest_the_balance_pays_for(
    model: ModelInfo, balance: int, input_tokens: int
) -> None:
    tokens = pricing.affordable_max_tokens(model, balance=balance, input_tokens=input_tokens)
    if tokens > 0:
        assert pricing.hold_coins(model, input_tokens=input_tokens, max_tokens=tokens) <= balance
    assert pricing.hold_coins(model, input_tokens=input_tokens, max_tokens=tokens + 1) > balance


def test_prices_are_shown_in_coins_per_thousand_tokens(settings: Any) -> None:
    from billing.pricing import price_in_coins
    from providers.catalogue import get_model

    settings.COINS_PER_USD = 1000
    assert price_in_coins(get_model("claude-sonnet-5-5")) == "3 coins per 1,000 tokens in, 15 out"
    assert price_in_coins(get_model("claude-haiku-5-5")) == "1 coin per 1,000 tokens in, 5 out"
    assert price_in_coins(get_model("gpt-4.1-mini")) == "0.4 coins per 1,000 tokens in, 1.6 out"


def test_every_catalogue_price_reaches_the_page_as_a_whole_number() -> None:
    """The composer's estimate does the hold's arithmetic in whole numbers (estimate.js)."""
    from billing.pricing import PRICE_SCALE, scaled_price
    from providers.catalogue import CATALOGUE

    for model in CATALOGUE:
        assert scaled_price(model.input_price) == round(model.input_price * PRICE_SCALE)
        assert scaled_price(model.output_price) == round(model.output_price * PRICE_SCALE)
    with pytest.raises(ValueError, match="finer"):
        scaled_price(0.00001)
