"""Running a tool call: its input checked against its schema, a time limit, its output cut to
size, a failure reported as an error result without a stack trace, and Stop still stopping."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tools.registry import Registry, Tool, ToolError, run_tool

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": 0}},
    "required": ["n"],
    "additionalProperties": False,
}


def _tool(run: Any, name: str = "echo") -> Tool:
    return Tool(name=name, description="test", input_schema=SCHEMA, run=run)


async def _echo(arguments: dict[str, Any]) -> str:
    return "x" * arguments["n"]


async def test_input_that_breaks_the_schema_is_an_error_result() -> None:
    bad_inputs: list[Any] = [{}, {"n": -1}, {"n": "3"}, {"n": 1, "more": 2}, [], "n=1", None]
    for bad in bad_inputs:
        result = await run_tool(_tool(_echo), bad)
        assert result.is_error and result.content.startswith("The input")


async def test_a_long_result_is_cut_and_says_so() -> None:
    result = await run_tool(_tool(_echo), {"n": 50}, max_chars=10)
    assert result.content == "x" * 10 + "\n[cut: 40 more characters]"
    assert not result.is_error


async def test_a_slow_tool_is_stopped_at_its_time_limit() -> None:
    async def slow(arguments: dict[str, Any]) -> str:
        await asyncio.sleep(5)
        return "late"

    result = await run_tool(_tool(slow), {"n": 1}, time_limit=0.05)
    assert result.is_error and "longer than 0.05 s" in result.content
    assert result.duration_ms < 1000


async def test_a_failure_is_an_error_result_without_its_insides(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(arguments: dict[str, Any]) -> str:
        raise KeyError("secret internal detail")

    async def explained(arguments: dict[str, Any]) -> str:
        raise ToolError("Nothing found for that.")

    result = await run_tool(_tool(broken), {"n": 1})
    assert (result.content, result.is_error) == ("The tool failed unexpectedly.", True)
    assert "secret" in caplog.text  # for the operator, in the log
    said = await run_tool(_tool(explained), {"n": 1})
    assert (said.content, said.is_error) == ("Nothing found for that.", True)


async def test_stop_cancels_a_running_tool() -> None:
    started = asyncio.Event()

    async def waits(arguments: dict[str, Any]) -> str:
        started.set()
        await asyncio.sleep(30)
        return "never"

    call = asyncio.ensure_future(run_tool(_tool(waits), {"n": 1}))
    await started.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


def test_names_and_schemas_are_checked_when_registered() -> None:
    registry = Registry()
    registry.register(_tool(_echo))
    with pytest.raises(ValueError, match="twice"):
        registry.register(_tool(_echo))
    with pytest.raises(ValueError, match="name"):
        registry.register(_tool(_echo, name="has space"))
    with pytest.raises(ValueError, match="object"):
        registry.register(Tool("listy", "x", {"type": "array"}, _echo))
    assert [tool.name for tool in registry] == ["echo"]
    assert registry.get("echo") is not None and registry.get("missing") is None
