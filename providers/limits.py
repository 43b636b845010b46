"""How many tokens a reply may ask for."""

from __future__ import annotations

from providers.catalogue import ModelInfo


def clamp_max_tokens(model: ModelInfo, requested: int | None) -> int:
    """The `max_tokens` to send upstream: never below 1 nor above the model's output limit."""
    wanted = model.default_max_tokens if requested is None else requested
    return max(1, min(wanted, model.max_output_tokens))
