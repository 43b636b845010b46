"""The calculator tool: exact arithmetic on rational numbers, never `eval`.

The expression is parsed by Python's `ast` (only its grammar: numbers, + - * / // % and
powers, parentheses, `abs` and `sqrt`) and computed here on `Fraction`s, each number read from
its own text so `0.1` is one tenth exactly. `^` is a power, as people write it. Sizes are
bounded before they are computed (a power's digits, the expression's length and depth), so no
input can take the worker's time or memory.
"""

from __future__ import annotations

import ast
import math
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from tools.registry import REGISTRY, Tool, ToolError

MAX_EXPRESSION_CHARS = 1_000
# Of a result's numerator or denominator (under Python's 4,300-digit limit on printing one).
MAX_DIGITS = 4_000
APPROXIMATE_DIGITS = 30

_OPERATORS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
}


def _digits(value: Fraction) -> int:
    """About how many decimal digits its numerator or denominator has (without printing it)."""
    bits = max(abs(value.numerator).bit_length(), value.denominator.bit_length())
    return math.ceil(bits * math.log10(2))


def _checked(value: Fraction) -> Fraction:
    if _digits(value) > MAX_DIGITS:
        raise ToolError(f"The result has more than {MAX_DIGITS:,} digits.")
    return value


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise ToolError("Only whole-number powers are exact; use sqrt() for a square root.")
    if base == 0 and exponent < 0:
        raise ToolError("Division by zero.")
    if base not in (0, 1, -1):
        # Its size before computing it: digits grow with the exponent.
        digits = abs(exponent) * max(
            math.log10(abs(base.numerator) or 1), math.log10(base.denominator)
        )
        if digits > MAX_DIGITS:
            raise ToolError(f"The result would have more than {MAX_DIGITS:,} digits.")
    return base ** int(exponent)


def _sqrt(value: Fraction) -> Fraction | Decimal:
    if value < 0:
        raise ToolError("The square root of a negative number is not a real number.")
    top, bottom = math.isqrt(value.numerator), math.isqrt(value.denominator)
    if top * top == value.numerator and bottom * bottom == value.denominator:
        return Fraction(top, bottom)
    with localcontext() as context:
        context.prec = APPROXIMATE_DIGITS + 5
        return (Decimal(value.numerator) / Decimal(value.denominator)).sqrt()


class _Evaluator:
    def __init__(self, source: str) -> None:
        self.source = source
        self.approximate = False

    def value(self, node: ast.AST) -> Fraction:
        match node:
            case ast.Expression(body=body):
                return self.value(body)
            case ast.Constant(value=bool()):
                raise ToolError("Only numbers and + - * / // % ^ ( ) abs() sqrt() are allowed.")
            case ast.Constant(value=int() | float()):
                text = ast.get_source_segment(self.source, node) or str(node.value)
                return Fraction(Decimal(text.replace("_", "")))
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                return -self.value(operand)
            case ast.UnaryOp(op=ast.UAdd(), operand=operand):
                return self.value(operand)
            case ast.BinOp(left=left, op=op, right=right):
                return _checked(self._binary(op, self.value(left), self.value(right)))
            case ast.Call(func=ast.Name(id=name), args=[argument], keywords=[]) if name in (
                "abs",
                "sqrt",
            ):
                inner = self.value(argument)
                if name == "abs":
                    return abs(inner)
                root = _sqrt(inner)
                if isinstance(root, Decimal):
                    self.approximate = True
                    return Fraction(root)
                return root
        raise ToolError("Only numbers and + - * / // % ^ ( ) abs() sqrt() are allowed.")

    def _binary(self, op: ast.operator, left: Fraction, right: Fraction) -> Fraction:
        if isinstance(op, ast.Pow):
            return _power(left, right)
        if isinstance(op, (ast.Div, ast.FloorDiv, ast.Mod)) and right == 0:
            raise ToolError("Division by zero.")
        if isinstance(op, ast.Div):
            return left / right
        if isinstance(op, ast.FloorDiv):
            return Fraction(left // right)
        if isinstance(op, ast.Mod):
            return left % right
        apply = _OPERATORS.get(type(op))
        if apply is None:
            raise ToolError("Only numbers and + - * / // % ^ ( ) abs() sqrt() are allowed.")
        return apply(left, right)


def _decimal_text(value: Fraction) -> str | None:
    """The exact decimal spelling of the value, if it ends (a denominator of 2s and 5s)."""
    denominator = value.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    if denominator != 1:
        return None
    places = max(twos, fives)
    scaled = value * 10**places
    text = str(abs(scaled.numerator)).rjust(places + 1, "0")
    whole, fraction = text[: len(text) - places], text[len(text) - places :].rstrip("0")
    sign = "-" if value < 0 else ""
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


def _approximation(value: Fraction) -> str:
    with localcontext() as context:
        context.prec = APPROXIMATE_DIGITS
        return str(Decimal(value.numerator) / Decimal(value.denominator))


def calculate(expression: str) -> str:
    """The expression's value, as text: exact when it can be, else a 30-digit approximation
    beside the exact fraction (or alone, after an irrational square root)."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"The expression is longer than {MAX_EXPRESSION_CHARS} characters.")
    # People write powers with ^, and the multiplication and division signs for * and /.
    source = expression.replace("^", "**").replace("\u00d7", "*").replace("\u00f7", "/").strip()
    if not source:
        raise ToolError("The expression is empty.")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ToolError("That is not an arithmetic expression.") from None
    evaluator = _Evaluator(source)
    try:
        value = evaluator.value(tree)
    except RecursionError:
        raise ToolError("The expression is nested too deeply.") from None
    if evaluator.approximate:
        return f"≈ {_approximation(value)}"
    exact = _decimal_text(value)
    if exact is not None:
        return exact
    return f"{value.numerator}/{value.denominator} (≈ {_approximation(value)})"


async def _run(arguments: dict[str, Any]) -> str:
    return calculate(arguments["expression"])


CALCULATOR = REGISTRY.register(
    Tool(
        name="calculator",
        description=(
            "Exact arithmetic on decimal numbers and fractions: + - * / // % and ^ (a "
            "whole-number power), parentheses, abs() and sqrt(). Use it for any sum you would "
            "otherwise do in your head. Returns the exact value (a decimal, or a fraction "
            "with its approximation), or an approximation after an irrational square root."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "expression": {
                    "type": "string",
                    "description": "For example (1.5 + 2.25) * 4 / 3, or 2^64 - 1.",
                    "maxLength": MAX_EXPRESSION_CHARS,
                }
            },
            "required": ["expression"],
            "additionalProperties": False,
        },
        run=_run,
    )
)
