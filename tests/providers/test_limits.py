"""Property: max tokens is respected."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from providers.catalogue import CATALOGUE, ModelInfo
from providers.limits import clamp_max_tokens
from tests.strategies import requested_max_tokens


@given(model=st.sampled_from(CATALOGUE), requested=requested_max_tokens)
def test_max_tokens_is_respected(model: ModelInfo, requested: int | None) -> None:
    sent = clamp_max_tokens(model, requested)
    assert 1 <= sent <= model.max_output_tokens
    if requested is not None and 1 <= requested <= model.max_output_tokens:
        assert sent == requested


def test_no_request_gets_the_models_normal_reply_length() -> None:
    for model in CATALOGUE:
        assert clamp_max_tokens(model, None) == model.default_max_tokens
        assert model.default_max_tokens <= model.max_output_tokens
