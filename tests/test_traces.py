"""Traces: a reply is a trace with a span per provider call (GenAI semantic conventions), its
retries and tool calls as their own spans, checked with the SDK's in-memory exporter; the
OTLP/HTTP and Langfuse destinations checked against a local receiver that decodes what it is
sent (protobuf), basic auth included; a collector that is down costs a warning, not the reply;
text only where it is asked for; no key, cookie or session id in any span."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.test import Client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from chat import runner, tracing
from chat.models import Conversation
from chatsite import telemetry
from chatsite.logs import PlainFormatter
from providers import anthropic as anthropic_adapter
from providers.base import Credentials
from tests.chat.helpers import connect, send, until_end
from tests.fakes.anthropic import error_response, text_reply
from tests.fakes.otlp import Receiver, attributes
from tests.fakes.sse_server import SSEServer
from tests.tools.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-sonnet-5-5"
SUM = ("toolu_1", "calculator", ['{"expression": "6*7"}'])


@pytest.fixture
def memory() -> Iterator[InMemorySpanExporter]:
    """Spans as Langfuse would get them (its attributes set), without the text."""
    exporter = InMemorySpanExporter()
    telemetry.install([("langfuse", exporter, False)], batch=False)
    yield exporter
    telemetry.uninstall()


async def a_reply(person: Any, content: str = "What is 6*7?") -> list[dict[str, Any]]:
    conversation = await Conversation.objects.acreate(owner=person, model=MODEL)
    tab = await connect(person, conversation)
    await send(tab, type="send", content=content)
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    return frames


async def test_a_reply_is_a_trace_of_its_calls_retries_and_tools(
    alice: Any, anthropic_server: SSEServer, memory: InMemorySpanExporter
) -> None:
    anthropic_server.enqueue(error_response(529, "overloaded_error", "Overloaded"))
    anthropic_server.enqueue(text_reply(["Sum."], calls=[SUM], output_tokens=9))
    anthropic_server.enqueue(text_reply([" 42."], input_tokens=60, output_tokens=3))
    frames = await a_reply(alice)
    stop = frames[-1]
    spans = memory.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    (reply,) = by_name["chat reply"]
    calls = by_name[f"chat {MODEL}"]
    (tool,) = by_name["execute_tool calculator"]
    (wait,) = by_name["chat retry"]
    # One trace; every other span a child of the reply's.
    assert {span.context.trace_id for span in spans} == {reply.context.trace_id}
    assert all(s.parent.span_id == reply.context.span_id for s in [*calls, tool, wait])
    assert reply.attributes["chat.person.id"] == alice.pk
    assert reply.attributes["chat.message.id"] == stop["message_id"]
    assert reply.attributes["session.id"] == str(reply.attributes["chat.conversation.id"])
    assert reply.attributes["chat.status"] == "complete"
    assert reply.attributes["chat.coins"] == stop["coins_charged"] > 0
    # The reply's tokens, the sum of its calls', under its own names: a backend adding up the
    # GenAI conventions' tokens over the trace counts each call's once.
    assert (
        reply.attributes["chat.usage.input_tokens"],
        reply.attributes["chat.usage.output_tokens"],
    ) == (
        stop["usage"]["input_tokens"],
        stop["usage"]["output_tokens"],
    )
    assert not [key for key in reply.attributes or {} if key.startswith("gen_ai.usage.")]
    # Three provider calls: the failed one, then a round each.
    failed, first, second = sorted(calls, key=lambda s: s.start_time)
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "overloaded"
    assert wait.attributes["error.type"] == "overloaded"
    for call in (first, second):
        assert call.attributes["gen_ai.operation.name"] == "chat"
        assert call.attributes["gen_ai.system"] == "anthropic"
        assert call.attributes["gen_ai.request.model"] == MODEL
        assert call.attributes["gen_ai.request.max_tokens"] > 0
        assert call.attributes["gen_ai.response.model"] == MODEL
        assert call.attributes["gen_ai.response.id"]
        assert call.attributes["gen_ai.usage.cost"] > 0
        assert [event.name for event in call.events] == ["gen_ai.first_token"]
    assert first.attributes["gen_ai.response.finish_reasons"] == ("tool_use",)
    assert second.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert (first.attributes["chat.round"], second.attributes["chat.round"]) == (1, 2)
    assert second.attributes["gen_ai.usage.input_tokens"] == 60
    assert tool.attributes["gen_ai.tool.call.id"] == "toolu_1"
    # No text: nothing asked for it.
    attributes = [key for span in spans for key in dict(span.attributes or {})]
    assert not telemetry.CONTENT_ATTRIBUTES.intersection(attributes)


async def test_the_text_goes_only_where_it_is_asked_for(
    alice: Any, anthropic_server: SSEServer
) -> None:
    plain, with_text, semconv = (
        InMemorySpanExporter(),
        InMemorySpanExporter(),
        InMemorySpanExporter(),
    )
    telemetry.install(
        [("plain", plain, False), ("langfuse", with_text, True), ("otlp", semconv, True)],
        batch=False,
    )
    try:
        anthropic_server.enqueue(text_reply(["Sum."], calls=[SUM]))
        anthropic_server.enqueue(text_reply([" 42."]))
        await a_reply(alice, "A private question: 6*7?")
    finally:
        telemetry.uninstall()
    shown = {s.name: dict(s.attributes or {}) for s in with_text.get_finished_spans()}
    assert shown["chat reply"]["langfuse.observation.input"] == "A private question: 6*7?"
    assert shown["chat reply"]["langfuse.observation.output"] == "Sum. 42."
    assert "A private question" in str(shown[f"chat {MODEL}"]["langfuse.observation.input"])
    assert shown["execute_tool calculator"]["langfuse.observation.output"] == "42"
    # Each text once, under the names its destination reads.
    assert not telemetry.SEMCONV_CONTENT.intersection(k for a in shown.values() for k in a)
    conventional = {s.name: dict(s.attributes or {}) for s in semconv.get_finished_spans()}
    assert "A private question" in str(conventional[f"chat {MODEL}"]["gen_ai.input.messages"])
    assert conventional["execute_tool calculator"]["gen_ai.tool.call.result"] == "42"
    assert not telemetry.LANGFUSE_CONTENT.intersection(k for a in conventional.values() for k in a)
    bare = [dict(s.attributes or {}) for s in plain.get_finished_spans()]
    assert {s["gen_ai.request.model"] for s in bare if "gen_ai.request.model" in s} == {MODEL}
    assert not telemetry.CONTENT_ATTRIBUTES.intersection(key for s in bare for key in s)
    assert "private" not in json.dumps(bare)


async def test_with_nothing_configured_no_span_is_made(
    alice: Any, anthropic_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert telemetry.tracer is None

    def no_spans(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a span was made")

    monkeypatch.setattr(tracing.trace, "set_span_in_context", no_spans)
    monkeypatch.setattr(tracing.context, "attach", no_spans)
    anthropic_server.enqueue(text_reply(["Sum."], calls=[SUM]))
    anthropic_server.enqueue(text_reply([" 42."]))
    assert (await a_reply(alice))[-1]["type"] == "message_stop"


def test_the_anthropic_sdk_traces_only_when_asked_inside_the_sites_trace(settings: Any) -> None:
    credentials = Credentials("sk-ant-test-0000000000000000", base_url="http://127.0.0.1:9")

    async def traced() -> Any:
        return anthropic_adapter._client(credentials).open_telemetry

    # Nothing configured, or the site's spans only: the SDK does none of its tracing work.
    assert async_to_sync(traced)()["traces"]["enabled"] is False
    telemetry.install([("otlp", InMemorySpanExporter(), False)], batch=False)
    try:
        assert async_to_sync(traced)()["traces"]["enabled"] is False
    finally:
        telemetry.uninstall()
    telemetry.install([("otlp", InMemorySpanExporter(), False)], batch=False, sdk=True)
    try:
        option = async_to_sync(traced)()
        assert option["traces"]["enabled"] is True
        assert option["tracer_provider"] is telemetry.sdk_tracer_provider() is not None
        assert option["propagation"] is False  # the trace's context never goes to Anthropic
    finally:
        telemetry.uninstall()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


async def test_otlp_and_langfuse_get_the_spans_over_http(
    alice: Any,
    anthropic_server: SSEServer,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=chat")
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-test")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-secret-9f")
    monkeypatch.setenv("LANGFUSE_HOST", receiver.url)
    telemetry.install(telemetry.destinations())
    try:
        anthropic_server.enqueue(text_reply(["Hello."]))
        await a_reply(alice, "Say hello")
        assert telemetry.flush()
    finally:
        telemetry.uninstall()
    paths = {path for path, _, _ in receiver.requests}
    assert paths == {"/v1/traces", "/api/public/otel/v1/traces"}
    for path, headers, _ in receiver.requests:
        if path == "/v1/traces":
            assert headers.get("x-team") == "chat" and "authorization" not in headers
        else:
            expected = base64.b64encode(b"pk-lf-test:sk-lf-secret-9f").decode()
            assert headers["authorization"] == f"Basic {expected}"
    plain = {span.name: attributes(span) for span in receiver.spans("/v1/traces")}
    langfuse = {
        span.name: attributes(span) for span in receiver.spans("/api/public/otel/v1/traces")
    }
    assert set(plain) == set(langfuse) == {"chat reply", f"chat {MODEL}"}
    call = langfuse[f"chat {MODEL}"]
    assert call["langfuse.observation.type"] == "generation"
    assert json.loads(call["langfuse.observation.usage_details"])["output"] == 1
    assert json.loads(call["langfuse.observation.cost_details"])["total"] > 0
    assert langfuse["chat reply"]["user.id"] == str(alice.pk)
    # The reply names its model but is not a generation of its own (Langfuse would take a span
    # with a model for one, and count the call's tokens twice).
    assert langfuse["chat reply"]["langfuse.observation.type"] == "span"
    # Langfuse gets the text; plain OTLP does not (nothing asked it to).
    assert langfuse["chat reply"]["langfuse.observation.input"] == "Say hello"
    assert "langfuse.observation.input" not in plain["chat reply"]


async def test_a_collector_that_is_down_costs_a_warning_not_the_reply(
    alice: Any,
    anthropic_server: SSEServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    telemetry.install(telemetry.destinations())
    try:
        anthropic_server.enqueue(text_reply(["Still here."]))
        began = time.monotonic()
        frames = await a_reply(alice, "Hello?")
        took = time.monotonic() - began
        with caplog.at_level(logging.WARNING):
            telemetry.flush(3_000)
    finally:
        telemetry.uninstall()
    assert frames[-1]["type"] == "message_stop" and took < 2
    assert any(r.levelno >= logging.WARNING and "opentelemetry" in r.name for r in caplog.records)


def _session_of(person: Any) -> str:
    client = Client()
    client.force_login(person)
    return str(client.cookies["sessionid"].value)


async def test_no_key_cookie_or_session_is_in_any_span(
    alice: Any, anthropic_server: SSEServer, settings: Any
) -> None:
    exporter = InMemorySpanExporter()
    telemetry.install([("everything", exporter, True)], batch=False)
    try:
        anthropic_server.enqueue(text_reply(["Sum."], calls=[SUM]))
        anthropic_server.enqueue(text_reply([" 42."]))
        session = await database_sync_to_async(_session_of)(alice)
        await a_reply(alice)
    finally:
        telemetry.uninstall()
    exported = json.dumps(
        [
            [s.name, dict(s.attributes or {}), [e.name for e in s.events]]
            for s in exporter.get_finished_spans()
        ]
    )
    for secret in (settings.PROVIDERS["anthropic"]["API_KEY"], session, settings.SECRET_KEY):
        assert secret not in exported


async def test_a_replys_log_lines_name_its_trace(
    alice: Any,
    anthropic_server: SSEServer,
    memory: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    anthropic_server.enqueue(text_reply(["Hello."]))
    frames = await a_reply(alice, "Hello")
    (reply,) = [s for s in memory.get_finished_spans() if s.name == "chat reply"]
    ended = [r for r in caplog.records if r.getMessage().startswith("reply ended")]
    assert len(ended) == 1
    line = ended[0]
    trace_id = f"{reply.context.trace_id:032x}"
    assert (getattr(line, "message_id", None), getattr(line, "trace_id", None)) == (
        frames[-1]["message_id"],
        trace_id,
    )
    assert f"trace={trace_id}]" in PlainFormatter().format(line)


async def test_a_reply_the_sampler_leaves_out_exports_nothing_and_its_logs_name_no_trace(
    alice: Any,
    anthropic_server: SSEServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """OpenTelemetry's own sampling variables thin a busy site's traces: a reply left out is
    whole all the same, and its log lines name no trace (no backend has it)."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    exporter = InMemorySpanExporter()
    telemetry.install([("otlp", exporter, False)], batch=False)
    caplog.set_level(logging.INFO)
    try:
        anthropic_server.enqueue(text_reply(["Sum."], calls=[SUM]))
        anthropic_server.enqueue(text_reply([" 42."]))
        frames = await a_reply(alice)
    finally:
        telemetry.uninstall()
    assert frames[-1]["type"] == "message_stop" and frames[-1]["coins_charged"] > 0
    assert exporter.get_finished_spans() == ()
    (ended,) = [r for r in caplog.records if r.getMessage().startswith("reply ended")]
    assert getattr(ended, "message_id", None) == frames[-1]["message_id"]
    assert getattr(ended, "trace_id", "unset") is None
