"""Tools from a real MCP server (built with the same SDK, in its own process): listed under the
server's name, called through the registry's `run_tool`, and every failure (a refused token, a
server that is down, one that is slow, a tool that raises) an error result in plain words, soon,
with the server's token in no result and no log line."""

from __future__ import annotations

import time

import pytest

from tests.tools.conftest import TOKEN, free_port
from tools import mcp as mcp_module
from tools.mcp import McpServerSpec, list_tools
from tools.registry import ToolError, run_tool


def _spec(url: str, token: str = TOKEN) -> McpServerSpec:
    return McpServerSpec(name="weather", url=url, headers={"Authorization": f"Bearer {token}"})


async def test_its_tools_are_listed_under_its_name(server_url: str) -> None:
    tools = {tool.name: tool for tool in await list_tools(_spec(server_url))}
    assert set(tools) == {
        "weather__forecast",
        "weather__slow",
        "weather__broken",
        "weather__trace_context",
    }
    forecast = tools["weather__forecast"]
    assert forecast.description == "(weather) The weather forecast for a city."
    assert forecast.input_schema["required"] == ["city"]


async def test_a_call_answers_and_a_failing_tool_is_an_error_result(server_url: str) -> None:
    tools = {tool.name: tool for tool in await list_tools(_spec(server_url))}
    answered = await run_tool(tools["weather__forecast"], {"city": "Lisbon", "days": 2})
    assert (answered.content, answered.is_error) == ("Lisbon: sunny for 2 day(s), 21 °C", False)
    failed = await run_tool(tools["weather__broken"], {})
    # In the server's own words (this SDK's server keeps the exception's text to itself).
    assert (failed.content, failed.is_error) == ("Error executing tool broken", True)
    # Input that breaks the tool's schema never reaches the server.
    wrong = await run_tool(tools["weather__forecast"], {"town": "Lisbon"})
    assert wrong.is_error and "schema" in wrong.content


async def test_a_refused_token_is_said_and_never_shown(
    server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ToolError, match="could not be reached") as refused:
        await list_tools(_spec(server_url, token="wrong-token-for-this-test"))
    assert "wrong-token" not in str(refused.value) and "wrong-token" not in caplog.text
    assert TOKEN not in caplog.text


async def test_a_server_that_is_down_costs_an_error_soon() -> None:
    began = time.monotonic()
    with pytest.raises(ToolError, match="could not be reached"):
        await list_tools(_spec(f"http://127.0.0.1:{free_port()}/mcp"))
    assert time.monotonic() - began < 5


async def test_a_slow_server_is_left_in_time(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = {tool.name: tool for tool in await list_tools(_spec(server_url))}
    monkeypatch.setattr(mcp_module, "MCP_TIMEOUT_SECONDS", 1.0)
    began = time.monotonic()
    result = await run_tool(tools["weather__slow"], {"seconds": 10})
    assert result.is_error and "did not answer in time" in result.content
    assert time.monotonic() - began < 4
