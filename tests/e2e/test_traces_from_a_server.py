"""Traces from a real server configured only by its environment, as an operator would run it:
a reply's trace reaches an OTLP collector and Langfuse; the Anthropic SDK's own span of the call
(asked for) nests under the site's, and Langfuse shows it as a plain span, not a second
generation; the JSON log lines name the same trace; no key, cookie or session is exported."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.servers import TEST_KEY, Person, Server, read_reply, uvicorn_command
from tests.fakes.anthropic import text_reply
from tests.fakes.otlp import Receiver, attributes
from tests.fakes.sse_server import SSEServer

MODEL = "claude-sonnet-5-5"
TITLER = "claude-haiku-5-5"  # the site's title model
LANGFUSE = "/api/public/otel/v1/traces"
SDK_SCOPE = "com.anthropic.sdk.python"


@pytest.fixture(scope="module")
def collector() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def traced_server(e2e_env: dict[str, str], collector: Receiver) -> Iterator[Server]:
    env = {
        **e2e_env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within a tenth of a second (default 5 s)
        "TRACES_SDK_SPANS": "true",
        "LANGFUSE_PUBLIC_KEY": "pk-lf-e2e",
        "LANGFUSE_SECRET_KEY": "sk-lf-e2e-secret-7d",
        "LANGFUSE_HOST": collector.url,
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
    }
    server = Server(env, "traced", command=uvicorn_command)
    yield server
    server.stop()


def _spans_of(collector: Receiver, path: str, trace_id: bytes) -> list[Any]:
    return [s for s in collector.spans(path) if s.trace_id == trace_id]


def test_a_servers_reply_is_one_trace_with_the_sdks_span_inside(
    traced_server: Server, collector: Receiver, provider: SSEServer, e2e_env: dict[str, str]
) -> None:
    provider.enqueue(text_reply(["Traced ", "from end to end."]))
    person = Person(traced_server.url)
    person.sign_up(f"tracer{time.time_ns()}")
    conversation_id = person.new_conversation()
    url = f"{traced_server.ws_url}/ws/chat/{conversation_id}/"
    headers = {"Origin": traced_server.url, "Cookie": person.cookie_header}
    frames = read_reply(url, headers, "Trace me")
    assert frames[-1]["type"] == "message_stop"
    message_id = frames[-1]["message_id"]

    wanted = ["anthropic.messages.create"] * 2 + ["chat reply", f"chat {MODEL}", f"title {TITLER}"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(
        sorted(s.name for s in collector.spans(path)) == sorted(wanted)
        for path in ("/v1/traces", LANGFUSE)
    ):
        time.sleep(0.1)
    (reply,) = [
        s
        for s in collector.spans()
        if s.name == "chat reply" and attributes(s)["chat.message.id"] == message_id
    ]
    spans = _spans_of(collector, "/v1/traces", reply.trace_id)
    scopes = collector.scopes()
    ours = {s.name: s for s in spans if scopes[s.span_id.hex()] == "chatsite"}
    call, title = ours[f"chat {MODEL}"], ours[f"title {TITLER}"]
    assert call.parent_span_id == title.parent_span_id == reply.span_id
    # The SDK's own spans (TRACES_SDK_SPANS): one for the reply's call, inside the call's
    # span, and one for the title's, inside the title's.
    sdk = {s.parent_span_id: s for s in spans if scopes[s.span_id.hex()] == SDK_SCOPE}
    assert set(sdk) == {call.span_id, title.span_id}
    assert {s.name for s in sdk.values()} == {"anthropic.messages.create"}
    assert attributes(sdk[call.span_id])["gen_ai.request.model"] == MODEL

    # Langfuse: the site's call is the generation; the reply and the SDK's span are plain spans.
    seen = [(s.name, attributes(s)) for s in _spans_of(collector, LANGFUSE, reply.trace_id)]
    kinds = sorted((name, got.get("langfuse.observation.type")) for name, got in seen)
    assert kinds == [
        ("anthropic.messages.create", "span"),
        ("anthropic.messages.create", "span"),
        (f"chat {MODEL}", "generation"),
        ("chat reply", "span"),
        (f"title {TITLER}", "generation"),
    ]
    assert dict(seen)["chat reply"]["session.id"] == str(conversation_id)

    # The JSON log lines about the reply name its message, conversation and trace.
    trace_id = reply.trace_id.hex()
    lines = [json.loads(line) for line in traced_server.log_path.read_text().splitlines()]
    ended = [line for line in lines if line.get("message", "").startswith("reply ended")]
    assert [(x["message_id"], x["conversation_id"], x["trace_id"]) for x in ended] == [
        (message_id, conversation_id, trace_id)
    ]

    # Nothing secret in anything exported: the provider key, the session, the Langfuse secret
    # (that goes in the Authorization header only).
    exported = b"".join(body for _, _, body in collector.requests)
    session = next(c.value for c in person.jar if c.name == "sessionid")
    for secret in (TEST_KEY, session, "sk-lf-e2e-secret-7d", e2e_env["SECRET_KEY"]):
        assert secret is not None and secret.encode() not in exported
