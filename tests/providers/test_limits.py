"""Property: max tokens is respected."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers import registry
from providers.base import ChatMessage, ChatRequest, Credentials
from providers.catalogue import CATALOGUE, ModelInfo
from providers.events import TextDelta
from providers.limits import clamp_max_tokens
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import openai as fake_openai
from tests.fakes.sse_server import SSEServer
from tests.strategies import requested_max_tokens

_PREFIX = {"anthropic": "", "openai": "/v1", "openrouter": "/api/v1"}


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


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(model=st.sampled_from(CATALOGUE), requested=requested_max_tokens)
async def test_max_tokens_is_respected_on_the_wire_for_every_model(
    all_providers: SSEServer, model: ModelInfo, requested: int | None
) -> None:
    """What reaches each provider, under the parameter name that model accepts."""
    sent = clamp_max_tokens(model, requested)
    request = ChatRequest(model=model.id, messages=[ChatMessage("user", "hi")], max_tokens=sent)
    adapter = registry.adapter(model.provider)
    if model.provider == "demo":
        events = [e async for e in adapter.stream(request, Credentials(api_key=""))]
        assert sum(isinstance(e, TextDelta) for e in events) <= sent
        return
    all_providers.reset()
    if model.provider == "anthropic":
        all_providers.enqueue(fake_anthropic.text_reply(["ok"], model=model.id))
    else:
        all_providers.enqueue(fake_openai.text_reply(["ok"], model=model.id))
    credentials = Credentials(
        api_key="sk-test", base_url=all_providers.url + _PREFIX[model.provider]
    )
    [e async for e in adapter.stream(request, credentials)]
    body = all_providers.requests[0].body
    name = model.max_tokens_param
    assert body[name] == sent and 1 <= sent <= model.max_output_tokens
    other = "max_completion_tokens" if name == "max_tokens" else "max_tokens"
    assert other not in body
    thinking = body.get("thinking") or {}
    if "budget_tokens" in thinking:
        assert 1024 <= thinking["budget_tokens"] < sent
