"""Traces, with the OpenTelemetry SDK: where they go, and which of their attributes may.

Nothing is set up unless a destination is configured; then `tracer` is the site's tracer and
chat/tracing.py makes the spans (with `tracer` None it makes none: no span objects, nothing per
event). Each destination has its own batching span processor, exporting from its own thread,
so the event loop never waits on a collector, and one that is down or slow costs a warning
from the exporter, never a reply.

- `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`), with `OTEL_EXPORTER_OTLP_HEADERS`:
  OTLP over HTTP, as OpenTelemetry's own variables say. Prompt and reply text only with
  `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.
- `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY` (and `LANGFUSE_HOST`, Langfuse Cloud by
  default): the same spans to Langfuse's OTLP endpoint (`/api/public/otel`, basic auth), with
  the text (Langfuse's purpose) unless `LANGFUSE_CAPTURE_CONTENT=false`.
- `TRACES_SDK_SPANS=true`: the Anthropic SDK's own span of each call too, inside the site's
  (off by default: it costs a reply about as much again). Other instrumented libraries (the MCP
  SDK's calls) use the global tracer provider, which `configure` sets to the site's.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

logger = logging.getLogger(__name__)

# The attributes that carry a person's or a model's text (chat/tracing.py sets them only when
# some destination may have them; the others get the spans without them): the GenAI semantic
# conventions' names, for an OTLP backend, and Langfuse's own, each sent where it is read.
SEMCONV_CONTENT = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }
)
LANGFUSE_CONTENT = frozenset({"langfuse.observation.input", "langfuse.observation.output"})
CONTENT_ATTRIBUTES = SEMCONV_CONTENT | LANGFUSE_CONTENT

LANGFUSE_CLOUD = "https://cloud.langfuse.com"
# Langfuse shows a span with a model as a generation: an SDK's own span of a call (a child of
# the call's, which has the usage and cost) is shown as the plain span it is, not a second one.
LANGFUSE_FOREIGN = {"langfuse.observation.type": "span"}

SCOPE = "chatsite"  # the site's spans' instrumentation scope

# The site's tracer (None: no destination configured, no spans made); whether Langfuse is a
# destination (its own attributes are set only then); which names of the text some destination
# takes (the conventions', Langfuse's), and whether any does.
tracer: trace.Tracer | None = None
langfuse = False
semconv_content = False
langfuse_content = False
capture_content = False
# Whether the provider SDKs make their own spans of their calls (the Anthropic SDK's), inside
# the site's call spans: `TRACES_SDK_SPANS=true`.
sdk_spans = False
_provider: TracerProvider | None = None


def _true(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


class Shown(SpanExporter):
    """An exporter that is sent the spans as its destination is to see them: without the (text)
    attributes it does not take, and with `added` set on the spans of other instrumentations
    (an SDK's own) that do not say it themselves."""

    def __init__(
        self,
        inner: SpanExporter,
        dropped: frozenset[str],
        added: dict[str, str] | None = None,
    ) -> None:
        self.inner = inner
        self.dropped = dropped
        self.added = added or {}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([self._shown(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def _shown(self, span: ReadableSpan) -> ReadableSpan:
        attributes = span.attributes or {}
        scope = span.instrumentation_scope
        foreign = scope is not None and scope.name != SCOPE
        added = {k: v for k, v in self.added.items() if k not in attributes} if foreign else {}
        if self.dropped.isdisjoint(attributes) and not added:
            return span
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes={**{k: v for k, v in attributes.items() if k not in self.dropped}, **added},
            events=span.events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=scope,
        )


def langfuse_exporter(public_key: str, secret_key: str, host: str) -> OTLPSpanExporter:
    credentials = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
    return OTLPSpanExporter(
        endpoint=f"{host.rstrip('/')}/api/public/otel/v1/traces",
        headers={"Authorization": f"Basic {credentials}"},
    )


def destinations() -> list[tuple[str, SpanExporter, bool]]:
    """The configured destinations: (name, exporter, whether it takes the text)."""
    found: list[tuple[str, SpanExporter, bool]] = []
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        # Its endpoint and headers from OpenTelemetry's own variables.
        content = _true("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
        found.append(("otlp", OTLPSpanExporter(), content))
    public, secret = os.environ.get("LANGFUSE_PUBLIC_KEY"), os.environ.get("LANGFUSE_SECRET_KEY")
    if public and secret:
        host = os.environ.get("LANGFUSE_HOST") or LANGFUSE_CLOUD
        content = _true("LANGFUSE_CAPTURE_CONTENT", default=True)
        found.append(("langfuse", langfuse_exporter(public, secret, host), content))
    return found


def _dropped(name: str, content: bool) -> frozenset[str]:
    """What a destination is not sent: all text unless it takes it; else the names of the text
    it does not read (Langfuse reads its own; an OTLP backend the conventions')."""
    if not content:
        return CONTENT_ATTRIBUTES
    return SEMCONV_CONTENT if name == "langfuse" else LANGFUSE_CONTENT


def install(
    exporters: list[tuple[str, SpanExporter, bool]], *, batch: bool = True, sdk: bool = False
) -> None:
    """Send the site's spans to `exporters`: (name, exporter, whether it takes the text); with
    `sdk`, the provider SDKs' own spans too."""
    global tracer, langfuse, semconv_content, langfuse_content, capture_content, _provider
    global sdk_spans
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "chatsite")})
    )
    for name, exporter, content in exporters:
        added = LANGFUSE_FOREIGN if name == "langfuse" else None
        shown = Shown(exporter, _dropped(name, content), added)
        provider.add_span_processor(
            BatchSpanProcessor(shown) if batch else SimpleSpanProcessor(shown)
        )
    _provider = provider
    langfuse = any(name == "langfuse" for name, _, _ in exporters)
    langfuse_content = any(name == "langfuse" and content for name, _, content in exporters)
    semconv_content = any(name != "langfuse" and content for name, _, content in exporters)
    capture_content = langfuse_content or semconv_content
    sdk_spans = sdk
    tracer = provider.get_tracer(SCOPE)


def uninstall() -> None:
    """No more spans (tests)."""
    global tracer, langfuse, semconv_content, langfuse_content, capture_content, _provider
    global sdk_spans
    if _provider is not None:
        _provider.shutdown()
    tracer, _provider = None, None
    langfuse = semconv_content = langfuse_content = capture_content = sdk_spans = False


def sdk_tracer_provider() -> TracerProvider | None:
    """The tracer provider of the provider SDKs' own spans: the site's, when it traces and they
    are asked for; else None, and an SDK then does none of its tracing work (with no provider
    of ours, the Anthropic SDK would otherwise prepare a span per call for OpenTelemetry's
    no-op one: about 0.15 ms a reply)."""
    return _provider if sdk_spans else None


def flush(timeout_millis: int = 5_000) -> bool:
    return _provider.force_flush(timeout_millis) if _provider is not None else True


def configure() -> None:
    """At start: trace to what the environment configures, if anything."""
    found = destinations()
    if not found:
        return
    install(found, sdk=_true("TRACES_SDK_SPANS"))
    assert _provider is not None
    # Instrumented libraries (an SDK's own spans, where it makes them) nest under ours.
    trace.set_tracer_provider(_provider)
    logger.info("traces go to: %s", ", ".join(name for name, _, _ in found))
