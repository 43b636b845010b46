"""Which tools a reply is offered, and running its calls.

The admin's switches (built-in tools and MCP servers, each on or off and for which models) are
read in the reply's start transaction, at most every few seconds per process (`setup`); the
person's switch is the conversation's `tools_enabled`; the catalogue says whether a model
takes tools at all. An MCP server's tools are listed with the official SDK and kept a few
minutes; a server that does not answer is left out of the reply (a warning in the log), so it
never holds a reply up for longer than `MCP_LIST_WAIT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from providers.base import ToolSpec
from providers.catalogue import ModelInfo
from providers.events import ToolCall
from tools import calculator, clock, fetch
from tools.mcp import McpServerSpec, list_tools
from tools.models import BuiltinTool, McpServer, model_ids
from tools.registry import REGISTRY, Tool, ToolError, ToolResult, run_tool

logger = logging.getLogger(__name__)

# The built-in tools, registered on import.
BUILT_IN: tuple[Tool, ...] = (calculator.CALCULATOR, clock.CLOCK, fetch.FETCHER)

# How long the admin's switches are kept before they are read again.
SETUP_SECONDS = 5.0
# How long a server's list of tools is kept; how long a reply waits for one never listed.
MCP_LIST_SECONDS = 300.0
MCP_LIST_WAIT_SECONDS = 5.0
# A server that failed to list is asked again after this long (meanwhile: none of its tools).
MCP_RETRY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Setup:
    """What the admin switched on: built-in tools and MCP servers, each for which models
    (an empty set: every model)."""

    builtins: tuple[tuple[str, frozenset[str]], ...] = ()
    servers: tuple[tuple[McpServerSpec, frozenset[str]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.builtins or self.servers)


def _for(model: ModelInfo, models: frozenset[str]) -> bool:
    return not models or model.id in models


def _setup_read() -> Setup:
    builtins = tuple(
        (row.name, model_ids(row.for_models))
        for row in BuiltinTool.objects.filter(enabled=True).only("name", "for_models")
    )
    servers = tuple(
        (
            McpServerSpec(name=server.name, url=server.url, headers=server.headers()),
            model_ids(server.for_models),
        )
        for server in McpServer.objects.filter(enabled=True)
    )
    return Setup(builtins=builtins, servers=servers)


_setup: tuple[float, Setup] | None = None


def setup() -> Setup:
    """The admin's switches (sync: the database thread), read again every SETUP_SECONDS."""
    global _setup
    now = time.monotonic()
    if _setup is None or now - _setup[0] > SETUP_SECONDS:
        _setup = (now, _setup_read())
    return _setup[1]


def forget_setup() -> None:
    """Read the switches again at the next reply (an admin's change; tests)."""
    global _setup
    _setup = None


def offered_setup(setup: Setup, model: ModelInfo, *, conversation_allows: bool) -> Setup:
    """What of `setup` a reply from `model` is offered: nothing if the model takes no tools or
    the person switched tools off in the conversation."""
    if not model.tools or not conversation_allows:
        return Setup()
    return Setup(
        builtins=tuple(item for item in setup.builtins if _for(model, item[1])),
        servers=tuple(item for item in setup.servers if _for(model, item[1])),
    )


def tool_names(setup: Setup) -> list[str]:
    """What the switched-on tools are, for people: the built-in ones by name, each MCP server
    as its own ("docs (MCP server)")."""
    return [name.replace("_", " ") for name, _ in setup.builtins] + [
        f"{spec.name} (MCP server)" for spec, _ in setup.servers
    ]


class Toolbox:
    """The tools one reply is offered, by the name the model calls them."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self.tools = {tool.name: tool for tool in tools}

    def __bool__(self) -> bool:
        return bool(self.tools)

    def specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(name=tool.name, description=tool.description, input_schema=tool.input_schema)
            for tool in self.tools.values()
        ]

    async def run(self, call: ToolCall) -> ToolResult:
        """Run one call; any failure is an error result for the model."""
        tool = self.tools.get(call.name)
        if tool is None:
            return ToolResult(f"There is no tool named {call.name!r} here.", is_error=True)
        if call.input is None:
            return ToolResult(call.problem, is_error=True)
        return await run_tool(tool, call.input)


# Each server's listed tools: (when listed, its tools), or (when it failed, None); by its
# name, address and headers (a changed server is listed anew).
_Key = tuple[str, str, tuple[tuple[str, str], ...]]
_listed: dict[_Key, tuple[float, list[Tool] | None]] = {}
_listing: dict[_Key, asyncio.Task[list[Tool] | None]] = {}


def _key(spec: McpServerSpec) -> _Key:
    return (spec.name, spec.url, tuple(sorted(spec.headers.items())))


async def _list(spec: McpServerSpec) -> list[Tool] | None:
    try:
        tools = await list_tools(spec)
    except ToolError as failure:
        logger.warning("MCP server %s is left out of replies for now: %s", spec.name, failure)
        tools = None
    _listed[_key(spec)] = (time.monotonic(), tools)
    return tools


def _listing_of(spec: McpServerSpec) -> asyncio.Task[list[Tool] | None]:
    task = _listing.get(_key(spec))
    if task is None or task.done():
        task = _listing[_key(spec)] = asyncio.get_running_loop().create_task(_list(spec))
    return task


async def _server_tools(spec: McpServerSpec) -> list[Tool]:
    """A server's tools: as listed within MCP_LIST_SECONDS; older ones while a new listing
    runs; none for a server that failed lately or does not answer within the wait."""
    now = time.monotonic()
    known = _listed.get(_key(spec))
    if known is not None:
        age = now - known[0]
        if known[1] is None and age < MCP_RETRY_SECONDS:
            return []
        if known[1] is not None:
            if age > MCP_LIST_SECONDS:
                _listing_of(spec)  # listed again in the background
            return known[1]
    # Never listed (or failed a while ago): the reply waits a little for it. The listing goes
    # on if the wait ends (shielded), for the next reply.
    try:
        async with asyncio.timeout(MCP_LIST_WAIT_SECONDS):
            tools = await asyncio.shield(_listing_of(spec))
    except TimeoutError:
        logger.warning("MCP server %s is slow to list its tools: left out of this reply", spec.name)
        return []
    return tools or []


def forget_servers() -> None:
    """Drop every server's listed tools (tests)."""
    _listed.clear()
    _listing.clear()


async def toolbox(setup: Setup) -> Toolbox:
    """The tools of an offered setup: built-in ones at once, each server's as listed."""
    tools: list[Tool] = []
    for name, _ in setup.builtins:
        tool = REGISTRY.get(name)
        if tool is not None:
            tools.append(tool)
    if setup.servers:
        listed = await asyncio.gather(*(_server_tools(spec) for spec, _ in setup.servers))
        for server_tools in listed:
            tools += server_tools
    return Toolbox(tools)
