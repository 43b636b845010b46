"""The tool registry, and running a tool call safely.

A tool is a name, a description for the model, a JSON schema for its input and an async
function from that input to text. `run_tool` is how every call runs: its input checked
against the schema, a time limit, its output cut to a size, and any failure turned into an
error result for the model (never an exception out of the reply; never a stack trace in the
text). A cancelled call (Stop) is not a failure: the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
from django.conf import settings

logger = logging.getLogger(__name__)

# What the providers accept as a function's name (Anthropic's and OpenAI's rules agree here).
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ToolError(Exception):
    """A failure the tool explains to the model in its own words (a bad time zone, a division
    by zero); the text is sent as the error result."""


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    run: Callable[[dict[str, Any]], Awaitable[str]]
    # Off until an admin switches it on (a tool that reaches outside the site).
    off_by_default: bool = False


@dataclass(frozen=True, slots=True)
class ToolResult:
    content: str
    is_error: bool = False
    duration_ms: int = 0


class Registry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> Tool:
        if not _NAME.fullmatch(tool.name):
            raise ValueError(f"tool name {tool.name!r}: 1-64 letters, digits, '_' or '-'")
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        if tool.input_schema.get("type") != "object":
            raise ValueError(f"tool {tool.name!r}: its input schema must describe an object")
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())


REGISTRY = Registry()


def _input_problem(tool: Tool, arguments: Any) -> str | None:
    if not isinstance(arguments, dict):
        return "The input must be a JSON object."
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(tool.input_schema).iter_errors(arguments)
    )
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    return (
        f"The input does not fit the tool's schema{f' at {where}' if where else ''}: "
        + (error.message[:300])
    )


def _cut(content: str, limit: int) -> str:
    if len(content) <= limit:
        return content
    return content[:limit] + f"\n[cut: {len(content) - limit:,} more characters]"


async def run_tool(
    tool: Tool,
    arguments: Any,
    *,
    time_limit: float | None = None,
    max_chars: int | None = None,
) -> ToolResult:
    """Run one call of `tool`; its result or, on any failure, an error result."""
    timeout = settings.TOOL_TIMEOUT_SECONDS if time_limit is None else time_limit
    limit = settings.TOOL_RESULT_MAX_CHARS if max_chars is None else max_chars
    began = time.monotonic()

    def ended(content: str, is_error: bool) -> ToolResult:
        spent = int((time.monotonic() - began) * 1000)
        return ToolResult(content=_cut(content, limit), is_error=is_error, duration_ms=spent)

    problem = _input_problem(tool, arguments)
    if problem is not None:
        return ended(problem, True)
    try:
        content = await asyncio.wait_for(tool.run(arguments), timeout)
    except TimeoutError:
        return ended(f"The tool took longer than {timeout:g} s and was stopped.", True)
    except ToolError as failure:
        return ended(str(failure), True)
    except Exception:
        logger.exception("tool %s failed", tool.name)
        return ended("The tool failed unexpectedly.", True)
    if not isinstance(content, str):
        logger.error("tool %s returned %s, not text", tool.name, type(content).__name__)
        return ended("The tool failed unexpectedly.", True)
    return ended(content, False)
