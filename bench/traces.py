"""What tracing costs a reply, in process: the CPU of its spans (chat/tracing.py on the real
OpenTelemetry SDK) and of their export (the OTLP/HTTP exporter's protobuf encoding, in the
SDK's batches; the HTTP post itself is left out: one per batch of up to 512 spans), per reply,
with no destination, with one, with the text, and with one reply in ten sampled.

A reply here is what chat/runner.py traces for a reply of one round: its span, one provider
call's span with its first-token event, started and ended as the runner does. `bench.reply_cost
--traces on` measures the same on the whole site, where the machine's noise is larger than
this cost.

    python -m bench.traces [--replies 20000]
"""

from __future__ import annotations

import argparse
import contextvars
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings_test")

import django  # noqa: E402

django.setup()

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402

from chat import tracing  # noqa: E402
from chat.reply_text import ReplyText  # noqa: E402
from chatsite import telemetry  # noqa: E402
from providers.base import ChatMessage, ChatRequest, Credentials  # noqa: E402
from providers.catalogue import get_model  # noqa: E402
from providers.events import Usage  # noqa: E402


class Encoding(SpanExporter):
    """The OTLP exporter's work short of the network: each batch encoded to protobuf bytes."""

    def __init__(self) -> None:
        self.size = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.size += len(encode_spans(spans).SerializeToString())
        return SpanExportResult.SUCCESS


def _reply(n: int) -> Any:
    text = ReplyText()
    text.add("A short answer of a few words, as the benchmark's replies are.", False)
    return SimpleNamespace(
        owner_id=7,
        conversation_id=1000 + n,
        message_id=5000 + n,
        resolved=SimpleNamespace(model=get_model("claude-sonnet-5-5"), credentials=Credentials("")),
        request=ChatRequest(
            model="claude-sonnet-5-5",
            messages=[ChatMessage("user", "Say hello in a sentence or two, please.")],
            max_tokens=16_000,
        ),
        round=1,
        attempt=1,
        usage=Usage(input_tokens=25, output_tokens=12),
        stop_reason="end_turn",
        text=text,
        round_text_from=0,
        coins_charged=1,
        call_span=None,
        span=None,
    )


def traced_reply(reply: Any) -> None:
    """What the runner does for a reply of one round, in its order."""
    reply.span = tracing.reply_started(reply)
    reply.call_span = tracing.call_started(reply)
    tracing.call_answered(reply, "msg_0123456789", "claude-sonnet-5-5")
    if reply.call_span is not None:
        tracing.call_first_token(reply)
    tracing.call_ended(reply, None)
    tracing.reply_ended(reply, "complete", None)


def measure(replies: int, destination: str) -> tuple[float, int]:
    """CPU microseconds per reply (every thread of the process), and bytes encoded."""
    exporter = Encoding()
    # Every span kept until the end (the SDK's queue holds 2,048 by default and drops the rest).
    os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = str(2 * replies + 100)
    if destination == "sampled":
        # One reply in ten traced, by OpenTelemetry's own variables (README, Operations).
        os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        os.environ["OTEL_TRACES_SAMPLER_ARG"] = "0.1"
    if destination != "none":
        telemetry.install([("otlp", exporter, destination == "text")])
    os.environ.pop("OTEL_TRACES_SAMPLER", None)
    os.environ.pop("OTEL_TRACES_SAMPLER_ARG", None)
    prepared = [_reply(n) for n in range(replies)]
    began = time.process_time()
    for reply in prepared:
        # In a context of its own, as a reply runs in its own task: its span is a trace's root.
        contextvars.copy_context().run(traced_reply, reply)
    telemetry.flush(60_000)
    spent = time.process_time() - began
    telemetry.uninstall()
    return spent / replies * 1e6, exporter.size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replies", type=int, default=20_000)
    args = parser.parse_args()
    measure(1000, "on")  # warm up
    for destination in ("none", "on", "text", "sampled"):
        micros, size = measure(args.replies, destination)
        shown = {
            "none": "no destination",
            "on": "OTLP",
            "text": "OTLP with the text",
            "sampled": "OTLP, one reply in ten sampled",
        }
        print(
            f"traces, {shown[destination]}: {micros:.1f} µs of CPU per reply"
            + (f", {size / args.replies:.0f} bytes exported per reply" if size else "")
        )


if __name__ == "__main__":
    main()
