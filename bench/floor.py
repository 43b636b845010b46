"""The floor: the same SDK iteration feeding one websocket frame per event, and nothing else.

A bare ASGI application (no Django, no database, no channel layer): on each websocket's `send`
frame it streams a reply from the provider through the Anthropic SDK, configured and read as the
site does it (the aiohttp transport; the body's server-sent events, their JSON as plain data), and
sends every text delta as its own `text_delta` frame. `bench.relay --app floor` serves it with
the same ASGI server and measures it with the same clients as the site, so the two compare.

    ANTHROPIC_BASE_URL=http://127.0.0.1:PORT daphne bench.floor:application
"""

from __future__ import annotations

import gc
import json
import os
from typing import Any

import anthropic

from providers import sse

_client: anthropic.AsyncAnthropic | None = None


def client() -> anthropic.AsyncAnthropic:
    global _client
    if _client is None:
        _client = anthropic.AsyncAnthropic(
            api_key="sk-ant-bench",
            base_url=os.environ["ANTHROPIC_BASE_URL"],
            max_retries=0,
            http_client=anthropic.DefaultAioHttpClient(),
        )
    return _client


async def _reply(send: Any, content: str) -> None:
    # The stream read the way the site's adapters read it: the SDK's request, the body's
    # server-sent events through providers/sse.py (no Django in it), their JSON as plain data.
    async with client().messages.with_streaming_response.create(
        model="claude-sonnet-5-5",
        max_tokens=4096,
        messages=[{"role": "user", "content": content}],
        stream=True,
    ) as response:
        offset, decoder = 0, sse.Decoder()
        chunks = response.http_response.aiter_bytes()
        async for chunk in chunks:
            for name, data in decoder.feed(chunk):
                if name != "content_block_delta":
                    continue
                delta = json.loads(data)["delta"]
                if delta["type"] == "text_delta":
                    text = delta["text"]
                    frame = {"type": "text_delta", "message_id": 1, "text": text, "offset": offset}
                    await send({"type": "websocket.send", "text": json.dumps(frame)})
                    offset += len(text)
    end = {"type": "message_stop", "message_id": 1, "stop_reason": "end_turn"}
    await send({"type": "websocket.send", "text": json.dumps(end)})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        # Readiness probes get a plain 200.
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"floor"})
        return
    if scope["type"] != "websocket":
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            frame = json.loads(message.get("text") or "{}")
            if frame.get("type") == "send":
                await _reply(send, frame["content"])
        elif message["type"] == "websocket.disconnect":
            return


# As the site does at start-up (chatsite/asgi.py): what was loaded lives as long as the process,
# so full garbage collections skip it. The floor must not pay pauses the site does not.
gc.collect()
gc.freeze()
