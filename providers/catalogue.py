"""The model catalogue: data, not code. Capabilities and limits are fields, never `if` ladders."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, TypeAlias

from providers.errors import ModelNotFound

ProviderName: TypeAlias = Literal["anthropic", "openai", "openrouter", "demo"]
Lifecycle: TypeAlias = Literal["active", "deprecated", "retired"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    provider: ProviderName
    display_name: str
    description: str
    context_window: int
    max_output_tokens: int
    # What a reply may use when the person asks for nothing else.
    default_max_tokens: int
    # USD per million tokens.
    input_price: float
    output_price: float
    cache_write_price: float = 0.0
    cache_read_price: float = 0.0
    thinking: bool = False
    # The end of life the provider announced; from that day on the model is refused.
    retires_on: dt.date | None = None
    successor: str | None = None

    def lifecycle(self, today: dt.date) -> Lifecycle:
        if self.retires_on is None:
            return "active"
        return "retired" if today >= self.retires_on else "deprecated"


_SONNET = "Claude Sonnet"
CATALOGUE: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="claude-sonnet-5-5",
        provider="anthropic",
        display_name=f"{_SONNET} 5.5",
        description="Anthropic's balanced model: fast, strong at writing, code and analysis.",
        context_window=1_000_000,
        max_output_tokens=128_000,
        default_max_tokens=16_000,
        input_price=3.0,
        output_price=15.0,
        cache_write_price=3.75,
        cache_read_price=0.30,
        thinking=True,
    ),
    ModelInfo(
        id="claude-opus-5-5",
        provider="anthropic",
        display_name="Claude Opus 5.5",
        description="Anthropic's most capable model, for the hardest problems.",
        context_window=1_000_000,
        max_output_tokens=128_000,
        default_max_tokens=16_000,
        input_price=5.0,
        output_price=25.0,
        cache_write_price=6.25,
        cache_read_price=0.50,
        thinking=True,
    ),
    ModelInfo(
        id="claude-haiku-5-5",
        provider="anthropic",
        display_name="Claude Haiku 5.5",
        description="Anthropic's fastest and cheapest model, for quick everyday answers.",
        context_window=1_000_000,
        max_output_tokens=128_000,
        default_max_tokens=8_000,
        input_price=1.0,
        output_price=5.0,
        cache_write_price=1.25,
        cache_read_price=0.10,
    ),
    ModelInfo(
        id="claude-sonnet-4-5-20250929",
        provider="anthropic",
        display_name=f"{_SONNET} 4.5",
        description="The previous Sonnet, kept until its announced end of life.",
        context_window=200_000,
        max_output_tokens=64_000,
        default_max_tokens=16_000,
        input_price=3.0,
        output_price=15.0,
        cache_write_price=3.75,
        cache_read_price=0.30,
        thinking=True,
        # The SDK's DEPRECATED_MODELS table: end of life on November 30th, 2026.
        retires_on=dt.date(2026, 11, 30),
        successor="claude-sonnet-5-5",
    ),
    ModelInfo(
        id="demo",
        provider="demo",
        display_name="Demo (offline)",
        description="A local stand-in that streams a canned markdown answer. No key needed.",
        context_window=100_000,
        max_output_tokens=4_096,
        default_max_tokens=1_024,
        input_price=1.0,
        output_price=5.0,
    ),
)

_BY_ID: dict[str, ModelInfo] = {m.id: m for m in CATALOGUE}


def find_model(model_id: str) -> ModelInfo | None:
    return _BY_ID.get(model_id)


def get_model(model_id: str, *, today: dt.date | None = None) -> ModelInfo:
    """The catalogue entry for `model_id`, refusing unknown and retired models."""
    model = _BY_ID.get(model_id)
    if model is None:
        raise ModelNotFound()
    if model.lifecycle(today or dt.date.today()) == "retired":
        successor = _BY_ID.get(model.successor or "")
        hint = f" Use {successor.display_name} instead." if successor else ""
        raise ModelNotFound(f"{model.display_name} was retired on {model.retires_on}.{hint}")
    return model
