"""A deploy loses nothing: SIGTERM to a real daphne or uvicorn process mid-reply ends the reply
before the process exits (chat/shutdown.py). The tab is told it was interrupted, with its text
and Retry, then its socket is closed for the page to reconnect; the reply is saved and settled
(the hold released, the output billed), with nothing left for the sweep; and another worker
sharing the database shows it so."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.servers import Person, Server, daphne_command, uvicorn_command
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

COMMANDS: dict[str, Callable[[int], list[str]]] = {
    "daphne": daphne_command,
    "uvicorn": uvicorn_command,
}


def _rows(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            return db.execute(query.replace("%s", "?"), params).fetchall()
    import psycopg

    with psycopg.connect(database_url) as db:
        return db.execute(query, params).fetchall()  # type: ignore[arg-type]


async def _reply_until_sigterm(server: Server, person: Person, conversation_id: int) -> Any:
    frames: list[dict[str, Any]] = []
    url = f"{server.ws_url}/ws/chat/{conversation_id}/"
    headers = {"Origin": server.url, "Cookie": person.cookie_header}
    async with connect(url, additional_headers=headers, open_timeout=10) as socket:
        await socket.send(json.dumps({"type": "send", "content": "Write until the deploy"}))
        while not frames or frames[-1]["type"] != "text_delta":
            frames.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
        server.process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frames.append(json.loads(await asyncio.wait_for(socket.recv(), 20)))
    assert closed.value.rcvd is not None
    return frames, closed.value.rcvd.code


@pytest.mark.parametrize("kind", sorted(COMMANDS))
def test_sigterm_mid_reply_ends_it_saved_and_settled_before_the_worker_exits(
    kind: str, e2e_env: dict[str, str], e2e_database: str, provider: SSEServer,
    live_server_url: str,
) -> None:  # fmt: skip
    server = Server(e2e_env, f"shutdown-{kind}", command=COMMANDS[kind])
    try:
        person = Person(server.url)
        person.sign_up(f"deploy{kind}{time.time_ns()}")
        conversation_id = person.new_conversation()
        provider.enqueue(text_reply([f"deploy{i} " for i in range(3000)], delay=0.01))
        frames, close_code = asyncio.run(_reply_until_sigterm(server, person, conversation_id))
        ended = time.monotonic()
        assert server.process.wait(20) is not None
        assert time.monotonic() - ended < 15
    finally:
        server.stop()
    end = next(f for f in reversed(frames) if f["type"] == "error")
    assert (end["code"], end["retryable"]) == ("interrupted", True)
    assert end["partial_content"].startswith("deploy0 ")
    assert close_code == 4000  # the page reconnects at once (to another worker)
    recorded = provider.wait_for_disconnect(2.0)
    assert not recorded.completed  # the upstream stream was closed, not left to run

    message_id = end["message_id"]
    [(status, content, unsettled)] = _rows(
        e2e_database,
        "SELECT status, content, unsettled FROM chat_message WHERE id = %s",
        message_id,
    )
    assert (status, content, bool(unsettled)) == ("interrupted", end["partial_content"], False)
    kinds = {k for (k,) in _rows(
        e2e_database, "SELECT kind FROM billing_ledgerentry WHERE message_id = %s", message_id
    )}  # fmt: skip
    assert kinds == {"hold", "release", "capture"}
    [(usage_status,)] = _rows(
        e2e_database, "SELECT status FROM billing_llmusage WHERE message_id = %s", message_id
    )
    assert usage_status == "interrupted"
    # Another worker on the same database shows the reply ended, with its text and Retry.
    page = person.get(f"/chat/{conversation_id}/", live_server_url)
    assert 'data-status="interrupted"' in page and end["partial_content"].strip() in page
