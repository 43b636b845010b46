"""Usage figures are checked where the adapter reads them (providers/usage_checks.py): figures a
model could not have, or the columns could not hold, are replaced and logged; sane ones pass
unchanged and silently."""

from __future__ import annotations

import logging
import math

import pytest

from providers.base import ChatMessage, ChatRequest
from providers.catalogue import get_model
from providers.events import Usage
from providers.usage_checks import MAX_COUNT, NOT_A_COUNT, UsageCheck, count

MODEL = "meta-llama/llama-4-maverick"  # context 1,048,576; output 16,384; $0.15 / $0.60


def _check() -> UsageCheck:
    request = ChatRequest(model=MODEL, messages=[ChatMessage("user", "x" * 400)], max_tokens=100)
    return UsageCheck(request, provider="openrouter")


def test_sane_figures_pass_unchanged_and_silently(caplog: pytest.LogCaptureFixture) -> None:
    check = _check()
    usage = Usage(input_tokens=120, output_tokens=80, cache_read_input_tokens=10, cost_usd=7e-5)
    assert check(usage) == usage and check.output_usable
    assert not caplog.records


@pytest.mark.parametrize(
    "usage",
    [
        Usage(input_tokens=-5),
        Usage(input_tokens=NOT_A_COUNT),
        Usage(input_tokens=2_000_000),  # beyond the model's context window
        Usage(input_tokens=MAX_COUNT + 1),
        Usage(cache_read_input_tokens=-1),
        Usage(input_tokens=600_000, cache_read_input_tokens=600_000),  # together beyond it
    ],
)
def test_an_unusable_input_count_is_estimated_from_the_request(
    usage: Usage, caplog: pytest.LogCaptureFixture
) -> None:
    checked = _check()(usage)
    assert checked.input_tokens == 100  # 400 characters, about four a token
    assert checked.cache_read_input_tokens == checked.cache_creation_input_tokens == 0
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "unusable input figure" in caplog.text


@pytest.mark.parametrize("output", [-1, NOT_A_COUNT, 16_385, 10**15])
def test_an_unusable_output_count_is_left_to_the_estimate(output: int) -> None:
    check = _check()
    checked = check(Usage(input_tokens=10, output_tokens=output))
    assert checked.output_tokens == 0 and not check.output_usable
    # A whole reply's output is estimated from its text here.
    assert check.completion(Usage(output_tokens=output), "y" * 41).output_tokens == 11


@pytest.mark.parametrize("cost", [-5000.0, math.nan, math.inf, -0.0001, 50.0])
def test_an_unusable_cost_is_dropped_for_the_tokens_price(
    cost: float, caplog: pytest.LogCaptureFixture
) -> None:
    checked = _check()(Usage(input_tokens=1000, output_tokens=1000, cost_usd=cost))
    assert checked.cost_usd is None
    assert "unusable cost figure" in caplog.text


def test_a_cost_near_the_tokens_price_is_taken_at_the_providers_word() -> None:
    model = get_model(MODEL)
    priced = (1000 * model.input_price + 1000 * model.output_price) / 1_000_000
    for cost in (0.0, priced * 0.5, priced, priced * 1.9):
        assert (
            _check()(Usage(input_tokens=1000, output_tokens=1000, cost_usd=cost)).cost_usd == cost
        )


def test_each_problem_is_logged_once_per_call(caplog: pytest.LogCaptureFixture) -> None:
    check = _check()
    for _ in range(3):
        check(Usage(input_tokens=-1, output_tokens=-1, cost_usd=-1.0))
    assert len(caplog.records) == 3  # input, output, cost: once each


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (5, 5), (5.0, 5), (5.5, NOT_A_COUNT), ("5", NOT_A_COUNT), (True, NOT_A_COUNT)],
)
def test_a_reported_count_is_a_whole_number_or_unusable(value: object, expected: int) -> None:
    assert count(value) == expected
