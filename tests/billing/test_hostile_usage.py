"""Whatever usage numbers a provider reports (negative, not a number, absurd), a reply never
credits a person, and every balance stays the sum of its ledger entries."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import pricing
from billing import services as billing
from providers.catalogue import get_model
from providers.events import Usage

pytestmark = pytest.mark.django_db

_hostile_counts = st.integers(min_value=-(2**63), max_value=2**63)
_hostile_costs = st.none() | st.floats(allow_nan=True, allow_infinity=True)


@given(
    input_tokens=_hostile_counts,
    output_tokens=_hostile_counts,
    cost=_hostile_costs,
)
def test_a_reported_cost_or_count_below_zero_is_never_a_negative_price(
    input_tokens: int, output_tokens: int, cost: float | None
) -> None:
    model = get_model("claude-sonnet-5-5")
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost)
    usd = pricing.cost_usd(model, usage)
    assert usd.is_finite() and usd >= 0
    assert pricing.coins_for(usd) >= 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    input_tokens=st.integers(min_value=-(10**12), max_value=10**12),
    output_tokens=st.integers(min_value=-(10**12), max_value=10**12),
    cost=_hostile_costs,
)
def test_a_reply_with_hostile_usage_never_credits_its_person(
    alice: Any, input_tokens: int, output_tokens: int, cost: float | None
) -> None:
    model = get_model("anthropic/claude-sonnet-5.5")
    billing.coins_adjust(  # each example starts with coins (a huge count can take them all)
        user_id=alice.pk, amount=10_000, reason="test", reference=uuid.uuid4().hex,
        created_by_id=None,
    )  # fmt: skip
    before = billing.balance_of(user_id=alice.pk)
    reference = f"hostile:{uuid.uuid4().hex}"
    with transaction.atomic():
        hold = billing.reply_hold(
            user_id=alice.pk, model=model, input_characters=40, max_tokens=256,
            reference=f"{reference}:hold", conversation_id=1, message_id=None,
        )  # fmt: skip
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost)
        settled = billing.reply_settle(
            user_id=alice.pk, model=model, usage=usage, hold=hold, reference=reference,
            conversation_id=1, message_id=None,
        )  # fmt: skip
    assert settled.coins_charged >= 0
    assert billing.balance_of(user_id=alice.pk) == settled.balance <= before
    assert billing.reconcile() == []
