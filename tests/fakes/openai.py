"""OpenAI's (and OpenRouter's) documented Chat Completions streaming chunks, as fake-server scripts.

Each chunk is a `data:` line of `chat.completion.chunk` JSON; with `include_usage` the last one
has an empty `choices` list and the usage; `data: [DONE]` ends the stream. OpenRouter adds
`: OPENROUTER PROCESSING` comment lines, `delta.reasoning`, `usage.cost`, and errors as chunks
with an `error` object and `finish_reason: "error"`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tests.fakes.sse_server import Chunk, Script, sse

OPENROUTER_COMMENT = b": OPENROUTER PROCESSING\n\n"


def chunk(
    model: str,
    delta: dict[str, Any] | None = None,
    *,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
    **extra: Any,
) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_780_000_000,
        "model": model,
        "choices": []
        if delta is None and finish is None
        else [{"index": 0, "delta": delta or {}, "finish_reason": finish, "logprobs": None}],
        **extra,
    }
    if usage is not None:
        body["usage"] = usage
    return sse(None, body)


def text_reply(
    chunks: list[str],
    *,
    model: str = "gpt-5.5",
    prompt_tokens: int = 20,
    completion_tokens: int | None = None,
    cached_tokens: int = 0,
    finish: str = "stop",
    reasoning: list[str] | None = None,
    reasoning_details: Sequence[dict[str, Any]] = (),
    tool_call: bool = False,
    calls: Sequence[tuple[str, str, Sequence[str]]] = (),
    refusal: str | None = None,
    cost: float | None = None,
    comments: bool = False,
    include_usage: bool = True,
    error_after: int | None = None,
    error: dict[str, Any] | None = None,
    drop_after: int | None = None,
    no_finish: bool = False,
    delay: float = 0.0,
    hang: float = 0.0,
) -> Script:
    """A whole streamed completion; `error_after=n` sends an error chunk after n text deltas."""
    out: list[Chunk] = []
    if comments:
        out.append(Chunk(OPENROUTER_COMMENT))
    out.append(Chunk(chunk(model, {"role": "assistant", "content": ""})))
    for part in reasoning or ():
        out.append(Chunk(chunk(model, {"reasoning": part, "content": None})))
    for detail in reasoning_details:
        # OpenRouter's structured reasoning, a piece of one detail (by its index) a chunk.
        out.append(Chunk(chunk(model, {"reasoning_details": [detail], "content": None})))
    for n, maybe in enumerate([*chunks, None]):
        if error_after is not None and n == error_after:
            body = error or {"message": "The server had an error.", "type": "server_error"}
            if cost is not None:  # OpenRouter's form: the error rides on a chunk
                out.append(Chunk(chunk(model, {"content": ""}, finish="error", error=body), delay))
            else:
                out.append(Chunk(sse(None, {"error": body}), delay))
            return Script(chunks=out)
        if drop_after is not None and n == drop_after:
            return Script(chunks=out, drop=True)
        if maybe is not None:
            if comments and n % 2:
                out.append(Chunk(OPENROUTER_COMMENT))
            out.append(Chunk(chunk(model, {"content": maybe}), delay))
    if refusal is not None:
        out.append(Chunk(chunk(model, {"refusal": refusal})))
    if tool_call:
        calls = [("call_fake", "get_weather", ['{"city": "Pa', 'ris"}']), *calls]
    for index, (call_id, name, pieces) in enumerate(calls):
        # The first piece names the call; the arguments' JSON text follows in pieces.
        call = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        out.append(Chunk(chunk(model, {"tool_calls": [call]})))
        for piece in pieces:
            fragment = {"index": index, "function": {"arguments": piece}}
            out.append(Chunk(chunk(model, {"tool_calls": [fragment]})))
        finish = "tool_calls"
    if not no_finish:
        out.append(Chunk(chunk(model, {}, finish=finish)))
    if include_usage:
        completion = completion_tokens if completion_tokens is not None else len(chunks)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": (
                prompt_tokens + completion
                if isinstance(prompt_tokens, int) and isinstance(completion, int)
                else None
            ),
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
        }
        if cost is not None:
            usage |= {"cost": cost, "is_byok": False}
        out.append(Chunk(chunk(model, usage=usage)))
    out.append(Chunk(b"data: [DONE]\n\n"))
    return Script(chunks=out, hang=hang)


def error_response(
    status: int, message: str, *, type: str | None = None, code: Any = None, **headers: str
) -> Script:
    body = {"error": {"message": message, "type": type, "param": None, "code": code}}
    return Script(status=status, body=json.dumps(body).encode(), headers=headers)


def completion(text: str, *, model: str = "gpt-5.5", prompt_tokens: int = 30) -> Script:
    """A non-streaming `chat.completion` (titles)."""
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_780_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": 5,
            "total_tokens": prompt_tokens + 5,
        },
    }
    return Script(body=json.dumps(body).encode(), headers={"content-type": "application/json"})
