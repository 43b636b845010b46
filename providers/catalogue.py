"""The model catalogue: data, not code. Capabilities and limits are fields, never `if` ladders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias

from providers.errors import ModelNotFound

# A provider's name in providers/registry.py (a test holds every row to the registry).
ProviderName: TypeAlias = str
Lifecycle: TypeAlias = Literal["active", "deprecated", "retired"]
# How a model is asked to think: Anthropic's "adaptive" (the model decides how much) or
# "budget" (extended thinking with `budget_tokens`); OpenRouter's `reasoning` switch.
ThinkingMode: TypeAlias = Literal["adaptive", "budget", "reasoning"]
# The name of the output limit parameter: OpenAI's reasoning families take only
# `max_completion_tokens`; older chat models and OpenRouter take `max_tokens`.
MaxTokensParam: TypeAlias = Literal["max_tokens", "max_completion_tokens"]


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
    thinking: ThinkingMode | None = None
    max_tokens_param: MaxTokensParam = "max_tokens"
    # The end of life the provider announced; from that day on the model is refused.
    retires_on: dt.date | None = None
    successor: str | None = None
    # What the provider's models API last said (`sync_models`); None if never synced.
    reported_lifecycle: Lifecycle | None = None
    # It takes function tools (tools/offer.py offers it the site's).
    tools: bool = True

    @property
    def always_reasons(self) -> bool:
        """OpenAI's reasoning families (those taking `max_completion_tokens`) reason before
        every answer, and the reasoning counts against the output limit."""
        return self.max_tokens_param == "max_completion_tokens"

    def lifecycle(self, today: dt.date) -> Lifecycle:
        if self.reported_lifecycle is not None:
            # The provider's word wins: a past date on a "deprecated" model is an overdue
            # retirement, still callable, and only "retired" means gone.
            return self.reported_lifecycle
        if self.retires_on is None:
            return "active"
        return "retired" if today >= self.retires_on else "deprecated"


def _claude(
    id: str,
    display_name: str,
    description: str,
    *,
    context_window: int,
    max_output_tokens: int,
    input_price: float,
    output_price: float,
    thinking: ThinkingMode | None,
    default_max_tokens: int = 16_000,
    retires_on: dt.date | None = None,
    successor: str | None = None,
) -> ModelInfo:
    """An Anthropic model: cache writes cost 1.25 times input, cache reads a tenth."""
    return ModelInfo(
        id=id,
        provider="anthropic",
        display_name=display_name,
        description=description,
        context_window=context_window,
        max_output_tokens=max_output_tokens,
        default_max_tokens=default_max_tokens,
        input_price=input_price,
        output_price=output_price,
        cache_write_price=input_price * 1.25,
        cache_read_price=input_price / 10,
        thinking=thinking,
        retires_on=retires_on,
        successor=successor,
    )


_PREVIOUS = "An earlier generation, still served."
# Limits and prices are the providers' published figures, written by hand; `sync_models`
# refreshes Anthropic's limits and lifecycle from its Models API (providers/model_sync.py).
CATALOGUE: tuple[ModelInfo, ...] = (
    _claude(
        "claude-sonnet-5-5",
        "Claude Sonnet 5.5",
        "Anthropic's balanced model: fast, strong at writing, code and analysis.",
        context_window=1_000_000,
        max_output_tokens=128_000,
        input_price=3.0,
        output_price=15.0,
        thinking="adaptive",
    ),
    _claude(
        "claude-opus-5-5",
        "Claude Opus 5.5",
        "Anthropic's most capable model, for the hardest problems.",
        context_window=1_000_000,
        max_output_tokens=128_000,
        input_price=5.0,
        output_price=25.0,
        thinking="adaptive",
    ),
    _claude(
        "claude-haiku-5-5",
        "Claude Haiku 5.5",
        "Anthropic's fastest and cheapest model, for quick everyday answers.",
        context_window=1_000_000,
        max_output_tokens=128_000,
        default_max_tokens=8_000,
        input_price=1.0,
        output_price=5.0,
        thinking=None,
    ),
    _claude(
        "claude-opus-4-8",
        "Claude Opus 4.8",
        _PREVIOUS,
        context_window=1_000_000,
        max_output_tokens=128_000,
        input_price=5.0,
        output_price=25.0,
        thinking="adaptive",
    ),
    _claude(
        "claude-opus-4-7",
        "Claude Opus 4.7",
        _PREVIOUS,
        context_window=1_000_000,
        max_output_tokens=128_000,
        input_price=5.0,
        output_price=25.0,
        thinking="adaptive",
    ),
    _claude(
        "claude-opus-4-6",
        "Claude Opus 4.6",
        _PREVIOUS,
        context_window=200_000,
        max_output_tokens=128_000,
        input_price=5.0,
        output_price=25.0,
        # The SDK warns when this model is sent budgeted ("enabled") thinking.
        thinking="adaptive",
    ),
    _claude(
        "claude-sonnet-4-6",
        "Claude Sonnet 4.6",
        _PREVIOUS,
        context_window=200_000,
        max_output_tokens=64_000,
        input_price=3.0,
        output_price=15.0,
        thinking="adaptive",
    ),
    _claude(
        "claude-opus-4-5",
        "Claude Opus 4.5",
        _PREVIOUS,
        context_window=200_000,
        max_output_tokens=64_000,
        input_price=5.0,
        output_price=25.0,
        thinking="budget",
        # The SDK's DEPRECATED_MODELS table (anthropic 2.17): end of life January 22nd, 2027.
        retires_on=dt.date(2027, 1, 22),
        successor="claude-opus-5-5",
    ),
    _claude(
        "claude-haiku-4-5",
        "Claude Haiku 4.5",
        _PREVIOUS,
        context_window=200_000,
        max_output_tokens=64_000,
        default_max_tokens=8_000,
        input_price=1.0,
        output_price=5.0,
        thinking=None,
    ),
    _claude(
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "The previous Sonnet, kept until its announced end of life.",
        context_window=200_000,
        max_output_tokens=64_000,
        input_price=3.0,
        output_price=15.0,
        thinking="budget",
        # End of life November 30th, 2026 (the SDK's DEPRECATED_MODELS table until then): kept
        # so that conversations on it move to the successor with a note.
        retires_on=dt.date(2026, 11, 30),
        successor="claude-sonnet-5-5",
    ),
    ModelInfo(
        id="gpt-5.5",
        provider="openai",
        display_name="GPT-5.5",
        description="OpenAI's flagship model for writing, code and reasoning.",
        context_window=400_000,
        max_output_tokens=128_000,
        default_max_tokens=16_000,
        input_price=1.25,
        output_price=10.0,
        cache_read_price=0.125,
        max_tokens_param="max_completion_tokens",
    ),
    ModelInfo(
        id="gpt-5.4-mini",
        provider="openai",
        display_name="GPT-5.4 mini",
        description="A smaller, faster and cheaper GPT-5 model for everyday tasks.",
        context_window=400_000,
        max_output_tokens=128_000,
        default_max_tokens=8_000,
        input_price=0.25,
        output_price=2.0,
        cache_read_price=0.025,
        max_tokens_param="max_completion_tokens",
    ),
    ModelInfo(
        id="gpt-4.1-mini",
        provider="openai",
        display_name="GPT-4.1 mini",
        description="A fast non-reasoning model with a very long context.",
        context_window=1_047_576,
        max_output_tokens=32_768,
        default_max_tokens=8_000,
        input_price=0.40,
        output_price=1.60,
        cache_read_price=0.10,
    ),
    ModelInfo(
        id="anthropic/claude-sonnet-5.5",
        provider="openrouter",
        display_name="Claude Sonnet 5.5 (OpenRouter)",
        description="Anthropic's balanced model, billed through OpenRouter.",
        context_window=1_000_000,
        max_output_tokens=128_000,
        default_max_tokens=16_000,
        input_price=3.0,
        output_price=15.0,
        thinking="reasoning",
    ),
    ModelInfo(
        id="google/gemini-2.5-pro",
        provider="openrouter",
        display_name="Gemini 2.5 Pro (OpenRouter)",
        description="Google's reasoning model with a million-token context.",
        context_window=1_048_576,
        max_output_tokens=65_536,
        default_max_tokens=16_000,
        input_price=1.25,
        output_price=10.0,
        thinking="reasoning",
    ),
    ModelInfo(
        id="deepseek/deepseek-chat-v3.1",
        provider="openrouter",
        display_name="DeepSeek V3.1 (OpenRouter)",
        description="An open-weights model, strong at code, at a low price.",
        context_window=163_840,
        max_output_tokens=32_768,
        default_max_tokens=8_000,
        input_price=0.20,
        output_price=0.80,
    ),
    ModelInfo(
        id="meta-llama/llama-4-maverick",
        provider="openrouter",
        display_name="Llama 4 Maverick (OpenRouter)",
        description="Meta's open-weights mixture-of-experts model.",
        context_window=1_048_576,
        max_output_tokens=16_384,
        default_max_tokens=8_000,
        input_price=0.15,
        output_price=0.60,
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

_BUILT_IN: dict[str, ModelInfo] = {m.id: m for m in CATALOGUE}

# The model that names a provider's conversations (chat/titles.py). A title is six words from
# an excerpt of the first exchange: the provider's cheapest capable model writes it as well as
# its best, for a fraction of the coins (a title from Claude Opus costs about five times one
# from Haiku), and, being the same provider, it is paid by the same key and sees no text that
# provider had not seen. OpenAI's is a non-reasoning model (a reasoning one spends output
# tokens thinking first). A provider not named here titles with the reply's own model.
TITLE_MODELS: dict[ProviderName, str] = {
    "anthropic": "claude-haiku-5-5",
    "openai": "gpt-4.1-mini",
    "openrouter": "meta-llama/llama-4-maverick",
}


@dataclass(frozen=True, slots=True)
class Reported:
    """What a provider's models API last said about a model (stored by `sync_models`)."""

    lifecycle: Lifecycle
    context_window: int | None = None
    max_output_tokens: int | None = None
    retires_on: dt.date | None = None


# The catalogue as this process knows it: the built-in entries with the stored reports applied
# (providers/model_sync.py loads them). Replaced whole, never mutated, so readers need no lock.
_by_id: dict[str, ModelInfo] = dict(_BUILT_IN)


def apply_reported(reported: Mapping[str, Reported]) -> None:
    """Overlay the providers' own figures on the built-in entries (unknown ids are ignored)."""
    global _by_id
    merged = dict(_BUILT_IN)
    for model_id, report in reported.items():
        model = merged.get(model_id)
        if model is None:
            continue
        output = report.max_output_tokens or model.max_output_tokens
        merged[model_id] = replace(
            model,
            context_window=report.context_window or model.context_window,
            max_output_tokens=output,
            default_max_tokens=min(model.default_max_tokens, output),
            retires_on=report.retires_on
            if report.retires_on or report.lifecycle == "active"
            else model.retires_on,
            reported_lifecycle=report.lifecycle,
        )
    _by_id = merged


def models() -> list[ModelInfo]:
    """Every catalogue entry, retired ones included, in the catalogue's order."""
    return list(_by_id.values())


def find_model(model_id: str) -> ModelInfo | None:
    return _by_id.get(model_id)


def title_model(model: ModelInfo, *, today: dt.date | None = None) -> ModelInfo:
    """The model that titles a conversation replied to by `model`: its provider's title model
    (TITLE_MODELS) while that one is served, else `model` itself."""
    named = _by_id.get(TITLE_MODELS.get(model.provider, ""))
    day = today or dt.date.today()
    if named is None or named.provider != model.provider or named.lifecycle(day) == "retired":
        return model
    return named


def retired_phrase(model: ModelInfo, today: dt.date) -> str:
    """'<name> was retired' with its date when that date has passed (a provider may retire a
    model before the date it announced)."""
    passed = model.retires_on is not None and model.retires_on <= today
    when = f" on {model.retires_on:%B %-d, %Y}" if passed else ""
    return f"{model.display_name} was retired{when}"


def retirement_message(model: ModelInfo, today: dt.date) -> str:
    """Why `model` can no longer be used, naming its successor."""
    successor = _by_id.get(model.successor or "")
    hint = f" Use {successor.display_name} instead." if successor else " Pick another model."
    return f"{retired_phrase(model, today)}.{hint}"


def get_model(model_id: str, *, today: dt.date | None = None) -> ModelInfo:
    """The catalogue entry for `model_id`, refusing unknown and retired models."""
    model = _by_id.get(model_id)
    if model is None:
        raise ModelNotFound()
    day = today or dt.date.today()
    if model.lifecycle(day) == "retired":
        raise ModelNotFound(retirement_message(model, day))
    return model
