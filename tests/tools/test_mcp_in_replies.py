"""An MCP server's tools in a reply's loop, through the consumer: a real server (built with the
official SDK) called with its token, which reaches no frame, log line or model; a server that
is down or slow costs a clear error or is left out, never a stuck reply; Stop while a server is
being asked ends the reply at once."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chat import runner
from chat.models import Conversation, Message
from chatsite import telemetry
from tests.chat.helpers import connect, receive, send, until_end
from tests.fakes import anthropic
from tests.fakes.sse_server import SSEServer
from tests.tools.conftest import TOKEN, free_port
from tools import offer
from tools.models import McpServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_tools() -> Iterator[None]:
    offer.forget_setup()
    offer.forget_servers()
    yield
    offer.forget_setup()
    offer.forget_servers()


def add_server(url: str, **fields: Any) -> McpServer:
    server = McpServer(name="weather", url=url, **fields)
    server.set_headers({"Authorization": f"Bearer {TOKEN}"})
    server.save()
    return server


@pytest.fixture
def conversation(alice: Any) -> Conversation:
    return Conversation.objects.create(owner=alice, model="claude-sonnet-5-5")


async def test_a_reply_calls_a_tool_of_an_mcp_server(
    alice: Any,
    conversation: Conversation,
    anthropic_server: SSEServer,
    server_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await database_sync_to_async(add_server)(server_url)
    call = ("toolu_w", "weather__forecast", ['{"city": "Lis', 'bon", "days": 2}'])
    anthropic_server.enqueue(anthropic.text_reply(["Checking."], calls=[call]))
    anthropic_server.enqueue(anthropic.text_reply([" Sunny."]))
    caplog.set_level(logging.DEBUG)
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Weather in Lisbon?")
    frames = await until_end(tab)
    await tab.disconnect()
    await runner.wait_for_replies()
    offered = [t["name"] for t in anthropic_server.requests[0].body["tools"]]
    assert "weather__forecast" in offered and "weather__slow" in offered
    result = next(f for f in frames if f["type"] == "tool_result")
    assert result["is_error"] is False and result["content"] == "Lisbon: sunny for 2 day(s), 21 °C"
    saved = await Message.objects.aget(pk=frames[-1]["message_id"])
    assert saved.status == "complete" and saved.content == "Checking. Sunny."
    # Its token went to the server only.
    seen = [json.dumps(frames), json.dumps(saved.tools), caplog.text]
    seen += [json.dumps(request.body) for request in anthropic_server.requests]
    assert not any(TOKEN in text for text in seen)


async def test_an_mcp_call_runs_inside_its_tool_span(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer, server_url: str
) -> None:
    """The tool's span is current while the MCP SDK calls the server: the SDK's own span of the
    call nests under it, and the trace context it sends the server is the tool span's."""
    await database_sync_to_async(add_server)(server_url)
    call = ("toolu_t", "weather__trace_context", ["{}"])
    anthropic_server.enqueue(anthropic.text_reply(["Tracing."], calls=[call]))
    anthropic_server.enqueue(anthropic.text_reply([" Done."]))
    exporter = InMemorySpanExporter()
    telemetry.install([("otlp", exporter, False)], batch=False)
    try:
        tab = await connect(alice, conversation)
        await send(tab, type="send", content="Which trace is this?")
        frames = await until_end(tab)
        await tab.disconnect()
        await runner.wait_for_replies()
    finally:
        telemetry.uninstall()
    (span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("execute_tool")]
    result = next(f for f in frames if f["type"] == "tool_result")
    assert result["content"] == f"{span.context.trace_id:032x}-{span.context.span_id:016x}"


async def test_a_server_that_is_down_is_left_out_and_the_reply_goes_on(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    await database_sync_to_async(add_server)(f"http://127.0.0.1:{free_port()}/mcp")
    anthropic_server.enqueue(anthropic.text_reply(["Without it."]))
    tab = await connect(alice, conversation)
    began = time.monotonic()
    await send(tab, type="send", content="Weather?")
    frames = await until_end(tab)
    assert time.monotonic() - began < 3
    await tab.disconnect()
    assert frames[-1]["type"] == "message_stop"
    offered = [t["name"] for t in anthropic_server.requests[0].body["tools"]]
    assert offered and not any(name.startswith("weather__") for name in offered)


async def test_a_slow_mcp_call_comes_back_as_an_error_result(
    alice: Any,
    conversation: Conversation,
    anthropic_server: SSEServer,
    server_url: str,
    settings: Any,
) -> None:
    settings.TOOL_TIMEOUT_SECONDS = 0.5
    await database_sync_to_async(add_server)(server_url)
    call = ("toolu_s", "weather__slow", ['{"seconds": 30}'])
    anthropic_server.enqueue(anthropic.text_reply(["Waiting."], calls=[call]))
    anthropic_server.enqueue(anthropic.text_reply([" It timed out."]))
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Be slow")
    frames = await until_end(tab)
    await tab.disconnect()
    result = next(f for f in frames if f["type"] == "tool_result")
    assert result["is_error"] and "longer than 0.5 s" in result["content"]
    assert frames[-1]["type"] == "message_stop"
    sent = anthropic_server.requests[1].body["messages"][-1]["content"][0]
    assert sent["is_error"] is True


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An address that takes connections and never answers (a hung MCP server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/mcp"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


async def test_stop_while_a_hung_server_is_asked_for_its_tools_ends_the_reply_at_once(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer, silent_server: str
) -> None:
    await database_sync_to_async(add_server)(silent_server)
    tab = await connect(alice, conversation)
    await send(tab, type="send", content="Weather?")
    while (await receive(tab))["type"] != "message_start":
        pass
    await asyncio.sleep(0.2)  # the reply waits for the server's list of tools
    stopped_at = time.monotonic()
    await send(tab, type="stop")
    frames = await until_end(tab)
    assert time.monotonic() - stopped_at < 0.3
    assert frames[-1]["type"] == "message_stop" and frames[-1]["stop_reason"] == "stopped"
    assert anthropic_server.requests == []  # the model was never called
    await tab.disconnect()
    await runner.wait_for_replies()
