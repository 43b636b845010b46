"""A real MCP server, built with the official `mcp` SDK, for the tool tests: run as its own
process (`python -m tests.fakes.mcp_server PORT TOKEN`), streamable HTTP at /mcp, every
request refused without `Authorization: Bearer TOKEN`."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import uvicorn
from mcp.server import MCPServer
from opentelemetry import trace
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import PlainTextResponse

server = MCPServer("weather")


@server.tool()
def forecast(city: str, days: int = 1) -> str:
    """The weather forecast for a city."""
    return f"{city}: sunny for {days} day(s), 21 °C"


@server.tool()
async def slow(seconds: float) -> str:
    """Answers after a while."""
    await asyncio.sleep(seconds)
    return "finally"


@server.tool()
def broken() -> str:
    """Always fails."""
    raise RuntimeError("the weather station is offline")


@server.tool()
def trace_context() -> str:
    """The trace context the call came with, as the SDK's server span took it from the request."""
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}-{context.span_id:016x}"


def main() -> None:
    port, token = int(sys.argv[1]), sys.argv[2]
    app = server.streamable_http_app()

    async def guard(request: Any, call_next: Any) -> Any:
        if request.headers.get("authorization") != f"Bearer {token}":
            return PlainTextResponse("no", status_code=401)
        return await call_next(request)

    app.add_middleware(BaseHTTPMiddleware, dispatch=guard)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
