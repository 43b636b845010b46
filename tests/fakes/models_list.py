"""Models-list responses, the cheap call that tests a person's key."""

from __future__ import annotations

import json

from tests.fakes.sse_server import Script

ANTHROPIC_MODELS = Script(
    body=json.dumps(
        {
            "data": [
                {
                    "type": "model",
                    "id": "claude-sonnet-5-5",
                    "display_name": "Claude Sonnet 5.5",
                    "created_at": "2026-09-01T00:00:00Z",
                }
            ],
            "has_more": False,
            "first_id": "claude-sonnet-5-5",
            "last_id": "claude-sonnet-5-5",
        }
    ).encode()
)

OPENAI_MODELS = Script(
    body=json.dumps(
        {
            "object": "list",
            "data": [{"id": "gpt-x", "object": "model", "created": 0, "owned_by": "x"}],
        }
    ).encode()
)


def anthropic_models(*models: dict[str, object]) -> Script:
    """Anthropic's Models API page: lifecycle, limits and retirement date per model."""
    data = [
        {
            "type": "model",
            "created_at": "2026-01-01T00:00:00Z",
            "display_name": m["id"],
            "lifecycle": "active",
            "max_input_tokens": None,
            "max_tokens": None,
            "retires_at": None,
            **m,
        }
        for m in models
    ]
    ids = [m["id"] for m in data]
    body = {"data": data, "has_more": False, "first_id": ids[0], "last_id": ids[-1]}
    return Script(body=json.dumps(body).encode())


def openai_models(*ids: str, **extra: dict[str, object]) -> Script:
    """A `/models` list; OpenRouter's entries carry `name`, `context_length`, `top_provider`."""
    data = [
        {"id": i, "object": "model", "created": 0, "owned_by": "x", **extra.get(i, {})} for i in ids
    ]
    return Script(body=json.dumps({"object": "list", "data": data}).encode())
