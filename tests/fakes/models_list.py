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
