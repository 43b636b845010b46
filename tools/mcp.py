"""Tools from MCP servers, with the official `mcp` SDK over streamable HTTP.

A server's tools are listed and offered under its name (`<server>__<tool>`, so two servers'
tools never clash); each call opens a session, calls, and closes it, within a time limit. A
server that is down, slow or refusing costs a clear error result, never a stuck reply. Its
headers (a token, usually) go to that server only: never into a result, a log line or an
error's text.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tools.registry import Tool, ToolError

logger = logging.getLogger(__name__)

MCP_TIMEOUT_SECONDS = 10.0
MAX_LISTED = 200
_NAME_PART = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class McpServerSpec:
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)


@asynccontextmanager
async def _client(spec: McpServerSpec) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers=spec.headers, timeout=MCP_TIMEOUT_SECONDS)
    async with (
        http,
        Client(
            streamable_http_client(spec.url, http_client=http),
            read_timeout_seconds=MCP_TIMEOUT_SECONDS,
            cache=None,
        ) as client,
    ):
        yield client


def _tool_name(spec: McpServerSpec, name: str) -> str:
    return _NAME_PART.sub("_", f"{spec.name}__{name}")[:64]


async def list_tools(spec: McpServerSpec) -> list[Tool]:
    """The server's tools, as the registry's (ToolError if it cannot be asked)."""
    listed: list[Any] = []
    try:
        async with asyncio.timeout(MCP_TIMEOUT_SECONDS), _client(spec) as client:
            cursor = None
            while len(listed) < MAX_LISTED:
                page = await client.list_tools(cursor=cursor)
                listed += page.tools
                cursor = page.next_cursor
                if not cursor:
                    break
    except TimeoutError:
        raise ToolError(f"The MCP server {spec.name} did not answer in time.") from None
    except Exception as failure:
        logger.warning("MCP server %s could not list its tools: %s", spec.name, _kind(failure))
        raise ToolError(f"The MCP server {spec.name} could not be reached.") from None
    return [
        Tool(
            name=_tool_name(spec, tool.name),
            description=f"({spec.name}) {tool.description or tool.name}"[:1024],
            input_schema=dict(tool.input_schema) or {"type": "object"},
            run=partial(call, spec, tool.name),
        )
        for tool in listed[:MAX_LISTED]
    ]


async def call(spec: McpServerSpec, tool_name: str, arguments: dict[str, Any]) -> str:
    """Call one of the server's tools; its text, or ToolError with the server's own words."""
    try:
        async with asyncio.timeout(MCP_TIMEOUT_SECONDS), _client(spec) as client:
            result = await client.call_tool(tool_name, arguments)
    except TimeoutError:
        raise ToolError(f"The MCP server {spec.name} did not answer in time.") from None
    except Exception as failure:
        logger.warning(
            "MCP server %s failed a call of %s: %s", spec.name, tool_name, _kind(failure)
        )
        raise ToolError(f"The MCP server {spec.name} could not be reached.") from None
    text = "\n".join(_shown(item) for item in result.content)
    if result.is_error:
        raise ToolError(text or f"The MCP server {spec.name}'s tool {tool_name} failed.")
    return text


def _shown(item: Any) -> str:
    """A result's item as text (what is not text is named, not passed on)."""
    if getattr(item, "type", "") == "text":
        return str(item.text)
    return f"[{getattr(item, 'type', 'content')} not shown]"


def _kind(failure: BaseException) -> str:
    """A failure's kind, for a log line: never its text, which may carry a URL's secrets."""
    while isinstance(failure, BaseExceptionGroup) and failure.exceptions:
        failure = failure.exceptions[0]
    return type(failure).__name__
