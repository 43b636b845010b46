"""OpenAI and OpenRouter: one adapter on the official SDK's streaming Chat Completions API.

OpenRouter (`OpenRouterAdapter`) mirrors Chat Completions under its own base URL, with
identifying headers, a `reasoning` switch, keep-alive
comment lines, reasoning text in `delta.reasoning`, its cost in the final usage and errors as
chunks carrying an `error` object. The SDK makes the request (key, headers, errors before the
stream); the stream's chunks are read from the body (`providers/sse.py`) as plain JSON, not
built into the SDK's typed models, for the CPU per chunk (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
from django.conf import settings

from providers import clients, registry, sse, usage_checks
from providers.base import ChatRequest, Completion, Credentials, Listed
from providers.catalogue import ModelInfo, find_model
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

_FINISH_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}


def _client(credentials: Credentials, provider: str, headers: dict[str, str]) -> openai.AsyncOpenAI:
    base_url = credentials.base_url or registry.base_url(provider)
    return clients.cached(
        (provider, credentials.api_key, base_url),
        lambda: openai.AsyncOpenAI(
            api_key=credentials.api_key,
            base_url=base_url,
            # Retries are ours (chat/retry.py, one policy for every provider), never the SDK's.
            max_retries=0,
            timeout=clients.timeout(),
            http_client=clients.pool(
                "openai",
                lambda: openai.DefaultAioHttpClient(
                    timeout=clients.timeout(), verify=clients.tls()
                ),
            ),
            default_headers=headers,
        ),
    )


def _error_fields(body: object) -> tuple[int | None, str | None, str | None]:
    """(status, type, message) from an error object: OpenAI's `type`/`code` strings, or
    OpenRouter's numeric `code` (an HTTP status) inside a stream."""
    error = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, None
    code, kind, message = error.get("code"), error.get("type"), error.get("message")
    status = code if isinstance(code, int) and not isinstance(code, bool) else None
    # OpenAI puts the precise reason in `code` ("context_length_exceeded", "rate_limit_exceeded").
    error_type = code if isinstance(code, str) else kind if isinstance(kind, str) else None
    return status, error_type, message if isinstance(message, str) else None


def translate(exc: BaseException, *, byok: bool) -> ProviderError:
    """The one place OpenAI SDK and transport exceptions become our errors."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        _, error_type, detail = _error_fields(exc.body)
        return error_for(
            status=exc.status_code,
            error_type=error_type,
            detail=detail,
            retry_after=parse_retry_after(exc.response.headers.get("retry-after")),
            byok=byok,
        )
    if (cause := unreachable(exc)) is not None:
        return cause
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return ProviderTimeout()
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return Unavailable("The connection to the provider was lost. Try again.")
    if isinstance(exc, openai.APIError):
        # An error inside the stream: the SDK raises the base class with the error object.
        status, error_type, detail = _error_fields(exc.body)
        return error_for(status=status, error_type=error_type, detail=detail, byok=byok)
    raise exc


def _usage(reported: dict[str, Any]) -> Usage:
    """OpenAI counts cached prompt tokens inside `prompt_tokens`; ours are separate. Figures
    that are no numbers are kept as unusable ones, for the usage check to replace."""
    details = sse.obj(reported, "prompt_tokens_details")
    cached = _count(details.get("cached_tokens"))
    written = _count(details.get("cache_write_tokens"))
    prompt = _count(reported.get("prompt_tokens"))
    uncached = prompt - cached - written if min(prompt, cached, written) >= 0 else -1
    return Usage(
        input_tokens=uncached,
        output_tokens=_count(reported.get("completion_tokens")),
        cache_creation_input_tokens=written,
        cache_read_input_tokens=cached,
        cost_usd=_cost(reported.get("cost")),  # OpenRouter's own charge, in USD
    )


def _count(value: object) -> int:
    counted = usage_checks.count(value)
    return 0 if counted is None else counted


def _cost(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan  # not a number: unusable
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


# The fields of a reasoning detail that arrive in pieces (text, summary, encrypted data,
# signature); the others (type, id, format) are kept as they last came.
_DETAIL_PIECES = ("text", "summary", "data", "signature")


def _merge_detail(details: dict[int, dict[str, Any]], piece: dict[str, Any]) -> None:
    index = piece.get("index", 0)
    if not isinstance(index, int) or isinstance(index, bool):
        return
    detail = details.setdefault(index, {})
    for name, value in piece.items():
        if name in _DETAIL_PIECES and isinstance(value, str):
            detail[name] = detail.get(name, "") + value
        elif value is not None:
            detail[name] = value


class _StreamState:
    """Maps `chat.completion.chunk`s (decoded JSON) to neutral events."""

    def __init__(self, check: usage_checks.UsageCheck) -> None:
        self.check = check
        self.started = False
        self.stop_reason: StopReason | None = None
        self.usage: Usage | None = None
        # Tool calls being streamed, by index: their id, name and arguments' JSON pieces.
        self.calls: dict[int, tuple[str, str, list[str]]] = {}
        # OpenRouter's `reasoning_details` being streamed, by index: sent back within a tool
        # loop as they came (signatures and encrypted reasoning included).
        self.details: dict[int, dict[str, Any]] = {}

    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if not self.started:
            self.started = True
            out.append(MessageStart(model=sse.text(chunk, "model"), id=sse.text(chunk, "id")))
        # The usage chunk has an empty `choices` list; only the first choice is ever asked for.
        for choice in sse.objs(chunk, "choices")[:1]:
            delta = sse.obj(choice, "delta")
            # OpenRouter streams a reasoning model's visible thinking beside the content.
            if reasoning := sse.text(delta, "reasoning") or sse.text(delta, "reasoning_content"):
                out.append(ThinkingDelta(reasoning))
            for detail in sse.objs(delta, "reasoning_details"):
                _merge_detail(self.details, detail)
            if content := sse.text(delta, "content"):
                out.append(TextDelta(content))
            if refusal := sse.text(delta, "refusal"):
                out.append(TextDelta(refusal))
                self.stop_reason = "refusal"
            for piece in sse.objs(delta, "tool_calls"):
                # A call arrives in pieces: the first carries its id and name, each a piece of
                # its arguments' JSON text.
                index = piece.get("index")
                if not isinstance(index, int) or isinstance(index, bool):
                    continue
                function = sse.obj(piece, "function")
                call = self.calls.setdefault(index, ("", "", []))
                if not call[0] or not call[1]:
                    call = self.calls[index] = (
                        call[0] or sse.text(piece, "id"),
                        call[1] or sse.text(function, "name"),
                        call[2],
                    )
                call[2].append(sse.text(function, "arguments"))
            finish = sse.text(choice, "finish_reason")
            if finish:
                # The calls are complete once the choice has finished.
                out += [tool_call(*self.calls[i]) for i in sorted(self.calls)]
                out += [ThinkingBlock(self.details[i]) for i in sorted(self.details)]
                self.calls.clear()
                self.details.clear()
            if finish and self.stop_reason != "refusal":
                self.stop_reason = _FINISH_REASONS.get(finish, "other")
        if usage := sse.obj(chunk, "usage"):
            self.usage = self.check(_usage(usage))
            out.append(UsageUpdate(self.usage))
        return out


def _rounds(request: ChatRequest) -> list[dict[str, Any]]:
    """The reply's tool rounds so far: each an assistant message with its text and
    `tool_calls` (and OpenRouter's `reasoning_details` as they came), then a `tool` message per
    call. Chat Completions has no error flag on a result: an error says so in its text."""
    messages: list[dict[str, Any]] = []
    for done in request.rounds:
        wrote: dict[str, Any] = {
            "role": "assistant",
            "content": done.text or None,
            "tool_calls": [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.input or {})},
                }
                for call in done.calls
            ],
        }
        if done.thinking_blocks:
            wrote["reasoning_details"] = list(done.thinking_blocks)
        messages.append(wrote)
        messages += [
            {
                "role": "tool",
                "tool_call_id": outcome.call_id,
                "content": f"Error: {outcome.content}" if outcome.is_error else outcome.content,
            }
            for outcome in done.outcomes
        ]
    return messages


class OpenAIAdapter:
    """OpenAI's Chat Completions (and, subclassed, any provider that mirrors them)."""

    def __init__(self, name: str = "openai") -> None:
        self.name = name

    def headers(self) -> dict[str, str]:
        """Headers sent with every request besides the key."""
        return {}

    def extra_params(self, request: ChatRequest, model: ModelInfo | None) -> dict[str, Any]:
        """Parameters this provider takes beyond OpenAI's own."""
        return {}

    def _client(self, credentials: Credentials) -> openai.AsyncOpenAI:
        return _client(credentials, self.name, self.headers())

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        model = find_model(request.model)
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        messages += _rounds(request)
        params: dict[str, Any] = {"model": request.model, "messages": messages}
        params[model.max_tokens_param if model else "max_tokens"] = request.max_tokens
        params.update(self.extra_params(request, model))
        if request.tools:
            # Chat Completions' function tools (OpenRouter passes them to every provider).
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.input_schema,
                    },
                }
                for t in request.tools
            ]
        if not request.thinking and model is not None and model.always_reasons:
            # A reasoning family cannot stop reasoning; a call that needs none asks for little.
            params["reasoning_effort"] = "low"
        return params

    async def check_key(self, credentials: Credentials) -> None:
        try:
            await self._client(credentials).models.list()
        except Exception as exc:
            raise translate(exc, byok=credentials.byok) from None

    async def list_models(self, credentials: Credentials) -> list[Listed]:
        """The models endpoint. OpenAI gives ids only; OpenRouter adds names and limits."""
        try:
            page = await self._client(credentials).models.list()
        except Exception as exc:
            raise translate(exc, byok=credentials.byok) from None
        listed = []
        for model in page.data:
            extra: dict[str, Any] = model.model_extra or {}
            top = extra.get("top_provider") if isinstance(extra.get("top_provider"), dict) else {}
            listed.append(
                Listed(
                    id=model.id,
                    display_name=str(extra.get("name") or ""),
                    context_window=_positive(extra.get("context_length")),
                    max_output_tokens=_positive((top or {}).get("max_completion_tokens")),
                )
            )
        return listed

    async def stream(
        self, request: ChatRequest, credentials: Credentials
    ) -> AsyncIterator[StreamEvent]:
        client = self._client(credentials)
        try:
            async with client.chat.completions.with_streaming_response.create(
                **self._params(request),
                stream=True,
                # The last chunk then carries the usage (a cancelled stream never gets it).
                stream_options={"include_usage": True},
            ) as response:
                check = usage_checks.UsageCheck(request, provider=self.name)
                state, decoder, done = _StreamState(check), sse.Decoder(), False
                chunks = response.http_response.aiter_bytes()
                async for piece in chunks:
                    for _, data in decoder.feed(piece):
                        if data.startswith(b"[DONE]"):
                            done = True
                            break
                        chunk = sse.loads(data)
                        if chunk.get("error"):
                            # An error inside the stream, as a chunk carrying an error object.
                            status, error_type, detail = _error_fields(chunk["error"])
                            raise error_for(
                                status=status,
                                error_type=error_type,
                                detail=detail,
                                byok=credentials.byok,
                            )
                        for neutral in state.feed(chunk):
                            yield neutral
                    if done:
                        await sse.drain(chunks)
                        break
            if state.stop_reason is None:
                # `[DONE]` (or the end of the body) without a finish reason: cut off.
                raise Unavailable("The provider ended the reply early. Try again.")
            yield MessageStop(
                state.stop_reason,
                state.usage or Usage(),
                final_usage=state.usage is not None and check.output_usable,
            )
        except (openai.APIError, httpx2.HTTPError) as exc:
            raise translate(exc, byok=credentials.byok) from None
        except sse.Unreadable:
            # Not what the API documents: said as a provider error, not a crash.
            logger.warning("a %s stream chunk could not be read", self.name, exc_info=True)
            raise error_for(status=None, error_type=None, byok=credentials.byok) from None

    async def complete(self, request: ChatRequest, credentials: Credentials) -> Completion:
        """One short non-streaming reply (conversation titles)."""
        params = self._params(request)
        try:
            response = await self._client(credentials).chat.completions.create(**params)
        except Exception as exc:
            raise translate(exc, byok=credentials.byok) from None
        text = response.choices[0].message.content if response.choices else None
        usage = _usage(response.usage.to_dict()) if response.usage else Usage()
        check = usage_checks.UsageCheck(request, provider=self.name)
        return Completion(text=text or "", usage=check.completion(usage, text or ""))


class OpenRouterAdapter(OpenAIAdapter):
    """OpenRouter: OpenAI's Chat Completions under its own URL, with the site's attribution
    and a switch for reasoning models' visible thinking."""

    def __init__(self, name: str = "openrouter") -> None:
        super().__init__(name)

    def headers(self) -> dict[str, str]:
        """OpenRouter's app attribution (not authentication): the site's URL and name."""
        headers = {"X-OpenRouter-Title": settings.SITE_NAME, "X-Title": settings.SITE_NAME}
        if settings.SITE_URL:
            headers["HTTP-Referer"] = settings.SITE_URL
        return headers

    def extra_params(self, request: ChatRequest, model: ModelInfo | None) -> dict[str, Any]:
        if model is not None and model.thinking == "reasoning":
            return {"extra_body": {"reasoning": {"enabled": request.thinking}}}
        return {}
