"""Anthropic's documented Messages streaming events, as scripts for the fake server."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.fakes.sse_server import Chunk, Script, sse


def _message_start(model: str, input_tokens: int) -> bytes:
    return sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
        },
    )


def _block_start(index: int, block: dict[str, Any]) -> bytes:
    return sse(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def _block_delta(index: int, delta: dict[str, Any]) -> bytes:
    return sse(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    )


def _block_stop(index: int) -> bytes:
    return sse("content_block_stop", {"type": "content_block_stop", "index": index})


def text_reply(
    chunks: list[str],
    *,
    model: str = "claude-sonnet-5-5",
    input_tokens: int = 25,
    output_tokens: int | None = None,
    delay: float = 0.0,
    thinking: list[str] | None = None,
    tool_use: bool = False,
    calls: Sequence[tuple[str, str, Sequence[str]]] = (),
    stop_reason: str = "end_turn",
    error_after: int | None = None,
    error_type: str = "overloaded_error",
    hang: float = 0.0,
    drop_after: int | None = None,
) -> Script:
    """A whole streamed message: optional thinking block, the text in `chunks`, optional tool use.

    `calls` are tool calls after the text: (id, name, the input's JSON text in pieces);
    `tool_use=True` is one, get_weather for Paris.

    `error_after=n` sends an `error` event after n text deltas; `drop_after=n` cuts the
    connection there; `delay` is the pause before every text delta.
    """
    out: list[Chunk] = [
        Chunk(_message_start(model, input_tokens)),
        Chunk(sse("ping", {"type": "ping"})),
    ]
    index = 0
    if thinking is not None:
        out.append(
            Chunk(_block_start(index, {"type": "thinking", "thinking": "", "signature": ""}))
        )
        for part in thinking:
            out.append(Chunk(_block_delta(index, {"type": "thinking_delta", "thinking": part})))
        out.append(Chunk(_block_delta(index, {"type": "signature_delta", "signature": "c2ln"})))
        out.append(Chunk(_block_stop(index)))
        index += 1
    out.append(Chunk(_block_start(index, {"type": "text", "text": ""})))
    for n, maybe in enumerate([*chunks, None]):
        if error_after is not None and n == error_after:
            error = {"type": "error", "error": {"type": error_type, "message": "Overloaded"}}
            out.append(Chunk(sse("error", error), delay))
            return Script(chunks=out)
        if drop_after is not None and n == drop_after:
            return Script(chunks=out, drop=True)
        if maybe is not None:
            out.append(Chunk(_block_delta(index, {"type": "text_delta", "text": maybe}), delay))
    out.append(Chunk(_block_stop(index)))
    if tool_use:
        calls = [("toolu_fake", "get_weather", ['{"city": "Pa', 'ris"}']), *calls]
    for call_id, name, pieces in calls:
        index += 1
        block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        out.append(Chunk(_block_start(index, block)))
        for piece in pieces:
            out.append(
                Chunk(_block_delta(index, {"type": "input_json_delta", "partial_json": piece}))
            )
        out.append(Chunk(_block_stop(index)))
        stop_reason = "tool_use"
    out.append(
        Chunk(
            sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {
                        "output_tokens": output_tokens if output_tokens is not None else len(chunks)
                    },
                },
            )
        )
    )
    out.append(Chunk(sse("message_stop", {"type": "message_stop"})))
    return Script(chunks=out, hang=hang)


def error_response(status: int, error_type: str, message: str, **headers: str) -> Script:
    import json

    body = json.dumps({"type": "error", "error": {"type": error_type, "message": message}})
    return Script(status=status, body=body.encode(), headers=headers)


def message_response(
    text: str, *, model: str = "claude-sonnet-5-5", input_tokens: int = 60, output_tokens: int = 6
) -> Script:
    """A whole non-streaming Messages response (conversation titles)."""
    import json

    body = {
        "id": "msg_fake_title",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    return Script(body=json.dumps(body).encode())


def paced(tokens: int, duration: float) -> Script:
    """A reply of `tokens` deltas spread evenly over about `duration` seconds."""
    script = text_reply([f"t{i} " for i in range(tokens)])
    deltas = [c for c in script.chunks if isinstance(c.data, bytes) and b'"text_delta"' in c.data]
    pauses = min(len(deltas), 40)
    step = len(deltas) / pauses
    for n in range(pauses):
        deltas[int(n * step)].delay = duration / pauses
    return script
