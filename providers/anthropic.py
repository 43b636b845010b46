"""Anthropic adapter: the official SDK's request, the stream's events mapped to neutral ones.

The SDK makes the request (key, headers, errors before the stream); the stream's server-sent
events are read from the body (`providers/sse.py`) and their JSON used as plain data: the SDK's
typed event models, and more so its `messages.stream()` helper (which re-accumulates the whole
message on every event), would be the largest part of the CPU a streaming reply costs
(docs/benchmarks.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
from django.conf import settings

from chatsite import telemetry
from providers import clients, registry, sse, usage_checks
from providers.base import ChatRequest, Completion, Credentials, Listed
from providers.catalogue import find_model
from providers.errors import (
    ProviderError,
    ProviderTimeout,
    Unavailable,
    error_for,
    parse_retry_after,
    unreachable,
)
from providers.events import (
    MessageStart,
    MessageStop,
    StopReason,
    StreamEvent,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    Usage,
    UsageUpdate,
    tool_call,
)

logger = logging.getLogger(__name__)

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "refusal": "refusal",
}

# The SDK warns on every call to a deprecated model. The catalogue carries each model's end of
# life (the picker shows it; from that day the model is refused) and `_note_deprecation` logs it
# once per process, so only that one warning is filtered, nothing else.
DEPRECATION_WARNING = r"The model '.*' is deprecated"
warnings.filterwarnings("ignore", message=DEPRECATION_WARNING, category=DeprecationWarning)
_noted_deprecations: set[str] = set()


def _note_deprecation(model_id: str) -> None:
    if model_id in _noted_deprecations:
        return
    model = find_model(model_id)
    if model is None or model.lifecycle(dt.date.today()) != "deprecated":
        return
    _noted_deprecations.add(model_id)
    logger.warning(
        "model %s is deprecated: end of life %s; successor %s",
        model_id,
        model.retires_on or "not announced",
        model.successor or "none listed",
    )


def _client(credentials: Credentials) -> anthropic.AsyncAnthropic:
    base_url = credentials.base_url or registry.base_url("anthropic")
    # The SDK's own span of each call, inside the site's, only where asked for
    # (chatsite/telemetry.py); the trace's context is never sent to the provider.
    spans = telemetry.sdk_tracer_provider()
    traced: anthropic.OpenTelemetryClientOption = (
        {"tracer_provider": spans, "propagation": False} if spans is not None else False
    )
    return clients.cached(
        ("anthropic", credentials.api_key, base_url, id(spans)),
        lambda: anthropic.AsyncAnthropic(
            api_key=credentials.api_key,
            base_url=base_url,
            open_telemetry=traced,
            # Retries are ours (chat/retry.py, one policy for every provider), never the SDK's.
            max_retries=0,
            timeout=clients.timeout(),
            http_client=clients.pool(
                "anthropic",
                lambda: anthropic.DefaultAioHttpClient(
                    timeout=clients.timeout(), verify=clients.tls()
                ),
            ),
        ),
    )


def translate(exc: BaseException, *, byok: bool) -> ProviderError:
    """The one place Anthropic SDK and transport exceptions become our errors."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, anthropic.APIStatusError):
        retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
        return error_for(
            status=exc.status_code,
            error_type=exc.type,
            detail=exc.api_message,
            retry_after=retry_after,
            byok=byok,
        )
    if (cause := unreachable(exc)) is not None:
        return cause
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return ProviderTimeout()
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return Unavailable("The connection to the provider was lost. Try again.")
    if isinstance(exc, anthropic.APIError):
        return error_for(status=None, error_type=None, byok=byok)
    raise exc


def stream_error(body: dict[str, Any], *, byok: bool) -> ProviderError:
    """A mid-stream `error` event (for example `overloaded_error`), as its documented body."""
    error = sse.obj(body, "error")
    return error_for(
        status=None,
        error_type=sse.text(error, "type") or None,
        detail=sse.text(error, "message") or None,
        byok=byok,
    )


class _StreamState:
    """Maps the stream's events (decoded JSON) to neutral ones, keeping usage the way
    Anthropic reports it."""

    def __init__(self, check: usage_checks.UsageCheck) -> None:
        self.usage = Usage()
        self.check = check
        self.stop_reason: StopReason = "other"
        self.finished = False
        # Tool calls being streamed, by block index: their id, name and input's JSON pieces.
        self.calls: dict[int, tuple[str, str, list[str]]] = {}
        # Thinking blocks being streamed, by block index: their text and signature, to be sent
        # back as they came within a tool loop.
        self.thinking: dict[int, tuple[list[str], list[str]]] = {}

    def feed(self, event: dict[str, Any]) -> list[StreamEvent]:
        # Dispatch on the type string: new event types get added, unknown ones are skipped.
        match event.get("type"):
            case "content_block_delta":
                delta = sse.obj(event, "delta")
                kind = delta.get("type")
                if kind == "text_delta" and (text := sse.text(delta, "text")):
                    return [TextDelta(text)]
                if kind == "thinking_delta" and (thinking := sse.text(delta, "thinking")):
                    if (thought := self.thinking.get(_index(event))) is not None:
                        thought[0].append(thinking)
                    return [ThinkingDelta(thinking)]
                if kind == "signature_delta" and (signature := sse.text(delta, "signature")):
                    if (thought := self.thinking.get(_index(event))) is not None:
                        thought[1].append(signature)
                    return []
                if kind == "input_json_delta" and (call := self.calls.get(_index(event))):
                    call[2].append(sse.text(delta, "partial_json"))
                # Citations are not part of the visible text.
                return []
            case "content_block_stop":
                index = _index(event)
                if (thought := self.thinking.pop(index, None)) is not None:
                    text, signature = "".join(thought[0]), "".join(thought[1])
                    return [
                        ThinkingBlock(
                            {"type": "thinking", "thinking": text, "signature": signature}
                        )
                    ]
                call = self.calls.pop(index, None)
                return [] if call is None else [tool_call(*call)]
            case "message_start":
                message = sse.obj(event, "message")
                _assign_usage(self.usage, sse.obj(message, "usage"))
                return [MessageStart(model=sse.text(message, "model"), id=sse.text(message, "id"))]
            case "content_block_start":
                block = sse.obj(event, "content_block")
                kind = block.get("type")
                if kind == "tool_use":
                    # Its input streams as JSON pieces; the call is complete at its block's end.
                    # (A `server_tool_use` block is a tool Anthropic runs itself: not ours.)
                    self.calls[_index(event)] = (
                        sse.text(block, "id"),
                        sse.text(block, "name"),
                        [],
                    )
                    return []
                if kind == "text" and (text := sse.text(block, "text")):
                    return [TextDelta(text)]
                if kind == "thinking":
                    thinking = sse.text(block, "thinking")
                    self.thinking[_index(event)] = ([thinking], [])
                    return [ThinkingDelta(thinking)] if thinking else []
                if kind == "redacted_thinking":
                    # Encrypted thinking: nothing to show, but sent back as it came.
                    return [
                        ThinkingBlock(
                            {"type": "redacted_thinking", "data": sse.text(block, "data")}
                        )
                    ]
                return []
            case "message_delta":
                reason = sse.text(sse.obj(event, "delta"), "stop_reason")
                self.stop_reason = _STOP_REASONS.get(reason, "other")
                _assign_usage(self.usage, sse.obj(event, "usage"))
                return [UsageUpdate(self.check(self.usage))]
            case "message_stop":
                self.finished = True
                usage = self.check(self.usage)
                return [MessageStop(self.stop_reason, usage, self.check.output_usable)]
        return []


def _index(event: dict[str, Any]) -> int:
    index = event.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else -1


_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def _assign_usage(usage: Usage, reported: dict[str, Any]) -> None:
    # Anthropic's counts are running totals: assign them, never add.
    for name in _USAGE_FIELDS:
        value = usage_checks.count(reported.get(name))
        if value is not None:
            setattr(usage, name, value)


class AnthropicAdapter:
    def __init__(self, name: str = "anthropic") -> None:
        self.name = name

    async def check_key(self, credentials: Credentials) -> None:
        """A cheap call that only a valid key passes (no tokens: the models list)."""
        try:
            await _client(credentials).models.list(limit=1)
        except Exception as exc:
            raise translate(exc, byok=credentials.byok) from None

    async def list_models(self, credentials: Credentials) -> list[Listed]:
        """The Models API: lifecycle, limits and retirement date of every model, all pages."""
        try:
            return [
                Listed(
                    id=info.id,
                    display_name=info.display_name,
                    lifecycle=info.lifecycle,
                    context_window=info.max_input_tokens,
                    max_output_tokens=info.max_tokens,
                    retires_at=info.retires_at,
                )
                async for info in _client(credentials).models.list(limit=100)
            ]
        except Exception as exc:
            raise translate(exc, byok=credentials.byok) from None

    async def stream(
        self, request: ChatRequest, credentials: Credentials
    ) -> AsyncIterator[StreamEvent]:
        client = _client(credentials)
        _note_deprecation(request.model)
        try:
            async with client.messages.with_streaming_response.create(
                **_params(request), stream=True
            ) as response:
                check = usage_checks.UsageCheck(request, provider=self.name)
                state, decoder = _StreamState(check), sse.Decoder()
                chunks = response.http_response.aiter_bytes()
                async for chunk in chunks:
                    for name, data in decoder.feed(chunk):
                        if name == "error":
                            raise stream_error(sse.loads(data), byok=credentials.byok)
                        if name in ("", "ping"):
                            continue
                        for neutral in state.feed(sse.loads(data)):
                            yield neutral
                        if state.finished:
                            break
                    if state.finished:
                        await sse.drain(chunks)
                        return
                # The stream ended without `message_stop`: the reply was cut off.
                raise Unavailable("The provider ended the reply early. Try again.")
        except (anthropic.APIError, httpx2.HTTPError) as exc:
            raise translate(exc, byok=credentials.byok) from None
        except sse.Unreadable:
            # Not what Anthropic documents: said as a provider error, not a crash.
            logger.warning("an Anthropic stream event could not be read", exc_info=True)
            raise error_for(status=None, error_type=None, byok=credentials.byok) from None

    async def complete(self, request: ChatRequest, credentials: Credentials) -> Completion:
        """One short non-streaming reply (conversation titles: a few tokens, no thinking)."""
        _note_deprecation(request.model)
        try:
            response = await _client(credentials).messages.create(**_params(request))
        except Exception as exc:
            raise translate(exc, byok=credentials.byok) from None
        usage = Usage()
        _assign_usage(usage, response.usage.to_dict())
        text = "".join(block.text for block in response.content if block.type == "text")
        check = usage_checks.UsageCheck(request, provider=self.name)
        return Completion(text=text, usage=check.completion(usage, text))


def _thinking(request: ChatRequest) -> dict[str, Any] | None:
    """The `thinking` parameter for the model, if it thinks and the request allows it."""
    model = find_model(request.model)
    if model is None or not request.thinking:
        return None
    if model.thinking == "adaptive":
        return {"type": "adaptive", "display": "summarized"}
    if model.thinking == "budget":
        # The budget must be at least 1,024 tokens and below `max_tokens`.
        budget = min(settings.THINKING_BUDGET_TOKENS, request.max_tokens // 2)
        if budget >= 1024:
            return {"type": "enabled", "budget_tokens": budget, "display": "summarized"}
    return None


def _rounds(request: ChatRequest) -> list[dict[str, Any]]:
    """The reply's tool rounds so far: each an assistant turn (its thinking blocks as they
    came, which Anthropic requires within a tool loop, its text and its `tool_use` blocks) and
    a user turn with the calls' `tool_result`s."""
    turns: list[dict[str, Any]] = []
    for done in request.rounds:
        wrote: list[dict[str, Any]] = [*done.thinking_blocks]
        if done.text:
            wrote.append({"type": "text", "text": done.text})
        wrote += [
            {"type": "tool_use", "id": call.call_id, "name": call.name, "input": call.input or {}}
            for call in done.calls
        ]
        results = [
            {
                "type": "tool_result",
                "tool_use_id": outcome.call_id,
                "content": outcome.content,
                "is_error": outcome.is_error,
            }
            for outcome in done.outcomes
        ]
        turns += [{"role": "assistant", "content": wrote}, {"role": "user", "content": results}]
    return turns


def _params(request: ChatRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [
            *({"role": m.role, "content": m.content} for m in request.messages),
            *_rounds(request),
        ],
    }
    if request.system:
        params["system"] = request.system
    if request.tools:
        params["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in request.tools
        ]
    thinking = _thinking(request)
    if thinking is not None:
        params["thinking"] = thinking
    return params
