"""The calculator tool: exact on any expression of its grammar (checked against `Fraction`
arithmetic on random expressions), and nothing else gets through: no name, attribute, call or
size that could run code or take the worker's time."""

from __future__ import annotations

import time
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.calculator import CALCULATOR, calculate
from tools.registry import ToolError, run_tool


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("0.1 + 0.2", "0.3"),
        ("1/3", "1/3 (≈ 0.333333333333333333333333333333)"),
        ("1/3 * 3", "1"),
        ("2^64 - 1", "18446744073709551615"),
        ("2**-3", "0.125"),
        ("-(1.5 + 2.25) * 4 / 3", "-5"),
        ("7 // 2 + 7 % 2", "4"),
        ("-7 // 2", "-4"),
        ("1e3 + 1", "1001"),
        ("1_000 * 3", "3000"),
        ("abs(-2.5)", "2.5"),
        ("sqrt(2.25)", "1.5"),
        ("sqrt(9/16)", "0.75"),
        ("sqrt(2)", "≈ 1.41421356237309504880168872421"),
        ("3 \u00d7 4 \u00f7 8", "1.5"),
        ("0.000001 * 0.000001", "0.000000000001"),
    ],
)
def test_exact_values(expression: str, value: str) -> None:
    assert calculate(expression) == value


# Expressions built from small decimals, and the value Fraction arithmetic gives them.
_number = st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False).map(
    lambda d: (str(d), Fraction(d))
)


def _combine(
    draw_pair: tuple[tuple[str, Fraction], tuple[str, Fraction]], op: str
) -> tuple[str, Fraction]:
    (left, a), (right, b) = draw_pair
    if op == "/" and b == 0:
        return f"({left} + {right})", a + b
    value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else a}[op]
    return f"({left} {op} {right})", value


_expressions = st.recursive(
    _number,
    lambda inner: st.builds(_combine, st.tuples(inner, inner), st.sampled_from("+-*/")),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(_expressions)
def test_any_expression_is_computed_exactly(case: tuple[str, Fraction]) -> None:
    expression, expected = case
    shown = calculate(expression)
    exact = shown.split(" (≈")[0]
    value = Fraction(exact) if "/" in exact else Fraction(Decimal(exact))
    assert value == expected


@pytest.mark.parametrize(
    "hostile",
    [
        "__import__('os').system('true')",
        "().__class__.__bases__",
        "open('/etc/passwd')",
        "x + 1",
        "lambda: 1",
        "[1, 2]",
        "'a' * 3",
        "True + 1",
        "abs(1, 2)",
        "sqrt(x=4)",
        "print(1)",
        "1 if 1 else 2",
        "1 < 2",
        "1 & 3",
        "~1",
        "1 << 3",
        "j = 1",
        "1j * 2",
        "",
        "   ",
        "(" * 5000 + "1" + ")" * 5000,
        "1 +" * 400,
    ],
)
def test_anything_but_arithmetic_is_refused(hostile: str) -> None:
    with pytest.raises(ToolError):
        calculate(hostile)


@pytest.mark.parametrize(
    "huge",
    ["9^9^9", "10^100000", "2^(2^40)", "(10^3000)^2", "(10^3000)*(10^3000)", "1/10^5000", "2^0.5"],
)
def test_sizes_are_bounded_before_they_are_computed(huge: str) -> None:
    began = time.monotonic()
    with pytest.raises(ToolError):
        calculate(huge)
    assert time.monotonic() - began < 1


def test_division_by_zero_is_said_plainly() -> None:
    for expression in ("1/0", "1//0", "1 % 0", "0^-1"):
        with pytest.raises(ToolError, match="Division by zero"):
            calculate(expression)


async def test_as_a_tool_call_it_answers_or_explains() -> None:
    answered = await run_tool(CALCULATOR, {"expression": "6 * 7"})
    assert (answered.content, answered.is_error) == ("42", False)
    refused = await run_tool(CALCULATOR, {"expression": "1/0"})
    assert (refused.content, refused.is_error) == ("Division by zero.", True)
    wrong = await run_tool(CALCULATOR, {"expr": "1"})
    assert wrong.is_error and "schema" in wrong.content
