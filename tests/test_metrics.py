"""Prometheus metrics (`GET /metrics`): only for a bearer of METRICS_TOKEN; replies, tokens,
coins, errors, retries, tool calls, sockets and relay messages counted, read back with the
Prometheus client's own parser; several worker processes summed in multiprocess mode; no key,
cookie or session id in what is served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from chat import runner
from chat.models import Conversation
from tests.chat.helpers import connect, send, until_end
from tests.fakes.anthropic import error_response, text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "metrics-token-5d2a9c"
ROOT = Path(__file__).resolve().parents[1]
MODEL = "claude-sonnet-5-5"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client: Client) -> dict[str, Any]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_metrics_answer_only_a_bearer_of_the_token(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 404
    families = scrape(client)
    assert {"chat_replies", "chat_replies_in_flight", "chat_open_sockets"} <= set(families)


async def test_a_reply_is_counted_once_with_its_tokens_coins_and_times(
    alice: Any, anthropic_server: SSEServer, settings: Any
) -> None:
    settings.METRICS_TOKEN = TOKEN
    conversation = await Conversation.objects.acreate(owner=alice, model=MODEL)
    before = {
        "complete": value("chat_replies_total", model=MODEL, status="complete"),
        "input": value("chat_tokens_total", model=MODEL, direction="input"),
        "output": value("chat_tokens_total", model=MODEL, direction="output"),
        "coins": value("chat_coins_total", model=MODEL),
        "ttft": value("chat_time_to_first_token_seconds_count", model=MODEL),
        "duration": value("chat_reply_duration_seconds_count", model=MODEL),
        "errors": value("chat_provider_errors_total", provider="anthropic", code="overloaded"),
        "retries": value("chat_retries_total", provider="anthropic"),
        "sockets": value("chat_open_sockets"),
        "tools": value("chat_tool_calls_total", outcome="ok"),
    }
    anthropic_server.enqueue(error_response(529, "overloaded_error", "Overloaded"))
    anthropic_server.enqueue(
        text_reply(["Sum."], calls=[("toolu_1", "calculator", ['{"expression": "1+1"}'])])
    )
    anthropic_server.enqueue(text_reply([" 2."], input_tokens=40, output_tokens=3))
    tab = await connect(alice, conversation)
    assert value("chat_open_sockets") == before["sockets"] + 1
    await send(tab, type="send", content="1+1?")
    frames = await until_end(tab)
    await runner.wait_for_replies()
    stop = frames[-1]
    assert stop["type"] == "message_stop"
    assert value("chat_replies_total", model=MODEL, status="complete") == before["complete"] + 1
    assert value("chat_replies_in_flight") == 0
    # The reply's tokens and coins: all its rounds'.
    usage = stop["usage"]
    assert (
        value("chat_tokens_total", model=MODEL, direction="input")
        == before["input"] + usage["input_tokens"]
    )
    assert (
        value("chat_tokens_total", model=MODEL, direction="output")
        == before["output"] + usage["output_tokens"]
    )
    assert value("chat_coins_total", model=MODEL) == before["coins"] + stop["coins_charged"]
    assert value("chat_time_to_first_token_seconds_count", model=MODEL) == before["ttft"] + 1
    assert value("chat_reply_duration_seconds_count", model=MODEL) == before["duration"] + 1
    assert (
        value("chat_provider_errors_total", provider="anthropic", code="overloaded")
        == before["errors"] + 1
    )
    assert value("chat_retries_total", provider="anthropic") == before["retries"] + 1
    assert value("chat_tool_calls_total", outcome="ok") == before["tools"] + 1
    await tab.disconnect()
    assert value("chat_open_sockets") == before["sockets"]


async def test_relay_messages_between_workers_are_counted(
    alice: Any, anthropic_server: SSEServer
) -> None:
    from chat.hub import Hub
    from tests.chat.test_relay import RemoteTab, show

    sent = value("chat_relay_messages_total", direction="sent", kind="relay.frames")
    received = value("chat_relay_messages_total", direction="received", kind="relay.frames")
    anthropic_server.enqueue(text_reply(["across ", "workers"]))
    conversation = await Conversation.objects.acreate(owner=alice, model=MODEL)
    other_worker, remote = Hub(), RemoteTab()
    await show(other_worker, remote, alice, conversation)
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="hello")
    await until_end(tab)
    await remote.until_end()
    assert value("chat_relay_messages_total", direction="sent", kind="relay.frames") > sent
    assert value("chat_relay_messages_total", direction="received", kind="relay.frames") > received
    await tab.disconnect()
    await other_worker.leave(remote, conversation.pk)
    await other_worker.close()


def test_nothing_secret_is_served(  # after the replies above: their labels are in it
    client: Client, alice: Any, settings: Any, anthropic_server: SSEServer
) -> None:
    settings.METRICS_TOKEN = TOKEN
    client.force_login(alice)
    session = client.cookies["sessionid"].value
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    key = settings.PROVIDERS["anthropic"]["API_KEY"]
    for secret in (TOKEN, session, key, alice.password):
        assert secret and secret not in text


WORKER = """
import os, sys
from chatsite import metrics
metrics.REPLIES.labels("demo", "complete").inc(int(sys.argv[1]))
metrics.OPEN_SOCKETS.inc(int(sys.argv[1]))
print(os.getpid())
"""

SCRAPE = """
import sys
from prometheus_client import generate_latest
from chatsite import metrics
if len(sys.argv) > 1:
    metrics.process_ended(int(sys.argv[1]))
sys.stdout.write(generate_latest(metrics._registry()).decode())
"""


def _python(code: str, directory: Path, *args: str) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    env["DJANGO_SETTINGS_MODULE"] = "chatsite.settings_test"
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _sample(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return 0.0


def test_several_workers_are_summed_in_multiprocess_mode(tmp_path: Path) -> None:
    first = _python(WORKER, tmp_path, "2").strip()
    _python(WORKER, tmp_path, "3")
    text = _python(SCRAPE, tmp_path)
    assert _sample(text, "chat_replies_total") == 5
    assert _sample(text, "chat_open_sockets") == 5
    # A worker that went away: its sockets no longer count; what it did still does.
    text = _python(SCRAPE, tmp_path, first)
    assert _sample(text, "chat_replies_total") == 5
    assert _sample(text, "chat_open_sockets") == 3
