from __future__ import annotations

from decimal import Decimal

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
