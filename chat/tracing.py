"""A reply's spans (chatsite/telemetry.py sends them, when a destination is configured).

A reply is a trace: its span (the person, the conversation as the session, the message, the
model, how it ended, its coins), a child span per provider call following OpenTelemetry's GenAI
semantic conventions (`chat <model>`: system, request model and max tokens, response model and
id, tokens, finish reason, cost; the first token as an event), one per retry's wait and one per
tool call (`execute_tool <name>`). Errors are recorded with their code. The text (the prompt,
the reply, a tool's input and result) is set only when a destination takes it; Langfuse reads
the `langfuse.*` and `user.id` / `session.id` attributes as a generation, its user and session.

With no destination (`telemetry.tracer` None) every function here returns at once: no span
object is made, and nothing is done per streamed event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import context, trace
from opentelemetry.trace import Span, Status, StatusCode

from billing import pricing
from chatsite import telemetry
from providers.errors import ProviderError

if TYPE_CHECKING:
    from chat.runner import Reply
    from providers.base import ChatRequest
    from providers.catalogue import ModelInfo
    from providers.events import ToolCall, Usage
    from tools.registry import ToolResult


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def reply_started(reply: Reply) -> Span | None:
    """The reply's span, current in the reply's task from here on (its calls nest under it)."""
    tracer = telemetry.tracer
    if tracer is None:
        return None
    model = reply.resolved.model
    span = tracer.start_span(
        "chat reply",
        attributes={
            "chat.person.id": reply.owner_id,
            "chat.conversation.id": reply.conversation_id,
            "chat.message.id": reply.message_id,
            "gen_ai.request.model": model.id,
            "gen_ai.provider.name": model.provider,
            "chat.byok": reply.resolved.credentials.byok,
        },
    )
    if telemetry.langfuse:
        # Langfuse: the person as its user, the conversation as its session. The reply is a
        # plain span there: one with a model would be taken for a generation, a second one of
        # every call (Langfuse types a span by its model when nothing says otherwise).
        span.set_attributes(
            {
                "user.id": str(reply.owner_id),
                "session.id": str(reply.conversation_id),
                "langfuse.trace.name": "reply",
                "langfuse.observation.type": "span",
            }
        )
    if telemetry.langfuse_content and reply.request.messages:
        span.set_attribute("langfuse.observation.input", reply.request.messages[-1].content)
    context.attach(trace.set_span_in_context(span))
    return span


def trace_id(span: Span | None) -> str | None:
    """The trace's id as tracing backends show it (32 hex digits), for the logs; None for a
    reply the sampler left out (`OTEL_TRACES_SAMPLER`): no backend has that trace."""
    if span is None or not span.get_span_context().trace_flags.sampled:
        return None
    return f"{span.get_span_context().trace_id:032x}"


def reply_ended(reply: Reply, status: str, error: ProviderError | None) -> None:
    span = reply.span
    if span is None:
        return
    span.set_attributes(
        {
            "chat.status": status,
            "chat.coins": reply.coins_charged,
            "chat.rounds": reply.round,
            # The sum of its calls' `gen_ai.usage.*`: under names of its own, so a backend that
            # adds up the GenAI conventions' tokens over a trace does not count them twice.
            "chat.usage.input_tokens": reply.usage.input_tokens,
            "chat.usage.output_tokens": reply.usage.output_tokens,
        }
    )
    if error is not None:
        span.set_attribute("error.type", error.code)
        span.set_status(Status(StatusCode.ERROR, error.code))
    if telemetry.langfuse_content:
        span.set_attribute("langfuse.observation.output", reply.text.value())
    span.end()


def call_started(reply: Reply) -> tuple[Span, object] | None:
    """A provider call's span, current while its stream is read (an SDK's own spans, where it
    makes them, nest under it); with the token that ends its being current."""
    tracer = telemetry.tracer
    if tracer is None:
        return None
    model, request = reply.resolved.model, reply.request
    span = tracer.start_span(
        f"chat {model.id}",
        kind=trace.SpanKind.CLIENT,
        attributes={
            **_asked(model, request),
            "chat.round": reply.round,
            "chat.attempt": reply.attempt,
        },
    )
    if telemetry.langfuse:
        _a_generation(span, model.id)
    if telemetry.capture_content:
        asked = _text([{"role": m.role, "content": m.content} for m in request.messages])
        _content(span, "input", asked, asked)
    return span, context.attach(trace.set_span_in_context(span))


def _asked(model: ModelInfo, request: ChatRequest) -> dict[str, Any]:
    """A provider call's request, after the GenAI semantic conventions."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": model.provider,
        "gen_ai.provider.name": model.provider,
        "gen_ai.request.model": model.id,
        "gen_ai.request.max_tokens": request.max_tokens,
    }


def _a_generation(span: Span, model_id: str) -> None:
    span.set_attributes(
        {"langfuse.observation.type": "generation", "langfuse.observation.model.name": model_id}
    )


def _content(span: Span, way: str, conventional: str, plain: str) -> None:
    """Text (`way`: input or output) under the names its destinations read: the GenAI
    conventions' (`gen_ai.<way>.messages`, JSON messages) and Langfuse's (as it is)."""
    if telemetry.semconv_content:
        span.set_attribute(f"gen_ai.{way}.messages", conventional)
    if telemetry.langfuse_content:
        span.set_attribute(f"langfuse.observation.{way}", plain)


def call_first_token(reply: Reply) -> None:
    if reply.call_span is not None:
        reply.call_span[0].add_event("gen_ai.first_token")


def call_answered(reply: Reply, response_id: str, response_model: str) -> None:
    if reply.call_span is not None:
        span = reply.call_span[0]
        if response_id:
            span.set_attribute("gen_ai.response.id", response_id)
        if response_model:
            span.set_attribute("gen_ai.response.model", response_model)


def call_ended(reply: Reply, failure: BaseException | None) -> None:
    if reply.call_span is None:
        return
    span, token = reply.call_span
    reply.call_span = None
    context.detach(token)  # type: ignore[arg-type]
    usage = reply.usage
    cost = float(pricing.cost_usd(reply.resolved.model, usage))
    span.set_attributes(
        {
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.usage.cost": cost,
        }
    )
    if telemetry.langfuse:
        span.set_attributes(
            {
                "langfuse.observation.usage_details": _text(
                    {"input": usage.input_tokens, "output": usage.output_tokens}
                ),
                "langfuse.observation.cost_details": _text({"total": cost}),
            }
        )
    if failure is None:
        span.set_attribute("gen_ai.response.finish_reasons", [str(reply.stop_reason)])
    elif isinstance(failure, ProviderError):
        span.set_attribute("error.type", failure.code)
        span.set_status(Status(StatusCode.ERROR, failure.code))
    elif isinstance(failure, asyncio.CancelledError):
        span.set_attribute("chat.stopped", True)  # a Stop (or the worker going down)
    else:
        span.set_attribute("error.type", type(failure).__name__)
        span.set_status(Status(StatusCode.ERROR, type(failure).__name__))
    if telemetry.capture_content:
        written = reply.text.value()[reply.round_text_from :]
        _content(span, "output", _text([{"role": "assistant", "content": written}]), written)
    span.end()


def title_started(model: ModelInfo, request: ChatRequest, conversation_id: int) -> Span | None:
    """A title call's span (`title <model>`, a generation of its own in Langfuse)."""
    tracer = telemetry.tracer
    if tracer is None:
        return None
    span = tracer.start_span(
        f"title {model.id}",
        kind=trace.SpanKind.CLIENT,
        attributes={**_asked(model, request), "chat.conversation.id": conversation_id},
    )
    if telemetry.langfuse:
        _a_generation(span, model.id)
        span.set_attribute("session.id", str(conversation_id))
    if telemetry.capture_content:
        asked = request.messages[-1].content
        _content(span, "input", _text([{"role": "user", "content": asked}]), asked)
    return span


@contextlib.contextmanager
def current(span: Span | None) -> Iterator[None]:
    """`span` current inside (an SDK's own span of the call made there nests under it)."""
    if span is None:
        yield
        return
    with trace.use_span(span, record_exception=False, set_status_on_exception=False):
        yield


def title_ended(span: Span | None, model: ModelInfo, usage: Usage, error: str, title: str) -> None:
    if span is None:
        return
    cost = float(pricing.cost_usd(model, usage))
    span.set_attributes(
        {
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.usage.cost": cost,
        }
    )
    if telemetry.langfuse:
        span.set_attribute("langfuse.observation.cost_details", _text({"total": cost}))
    if error:
        span.set_attribute("error.type", error)
        span.set_status(Status(StatusCode.ERROR, error))
    elif telemetry.capture_content:
        _content(span, "output", _text([{"role": "assistant", "content": title}]), title)
    span.end()


@contextlib.contextmanager
def retry_wait(reply: Reply, error: ProviderError, wait: float) -> Iterator[None]:
    """The wait before a failed call is tried again, as its own span."""
    tracer = telemetry.tracer
    if tracer is None:
        yield
        return
    attributes = {
        "chat.attempt": reply.attempt,
        "error.type": error.code,
        "chat.wait_seconds": wait,
    }
    with tracer.start_as_current_span("chat retry", attributes=attributes):
        yield


class ToolSpan:
    """A tool call's span (`execute_tool <name>`), ended with its result."""

    def __init__(self, call: ToolCall) -> None:
        self.span: Span | None = None
        tracer = telemetry.tracer
        if tracer is None:
            return
        self.span = tracer.start_span(
            f"execute_tool {call.name}",
            kind=trace.SpanKind.INTERNAL,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call.name,
                "gen_ai.tool.call.id": call.call_id,
            },
        )
        if telemetry.langfuse:
            self.span.set_attribute("langfuse.observation.type", "tool")
        if not telemetry.capture_content:
            return
        asked = _text(call.input if call.input is not None else {})
        if telemetry.semconv_content:
            self.span.set_attribute("gen_ai.tool.call.arguments", asked)
        if telemetry.langfuse_content:
            self.span.set_attribute("langfuse.observation.input", asked)

    def ended(self, result: ToolResult | None) -> None:
        span = self.span
        if span is None:
            return
        if result is None:
            span.set_attribute("error.type", "stopped")
        elif result.is_error:
            span.set_attribute("error.type", "tool_error")
            span.set_status(Status(StatusCode.ERROR, "tool_error"))
        if result is not None and telemetry.semconv_content:
            span.set_attribute("gen_ai.tool.call.result", result.content)
        if result is not None and telemetry.langfuse_content:
            span.set_attribute("langfuse.observation.output", result.content)
        span.end()
