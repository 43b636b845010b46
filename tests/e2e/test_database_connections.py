"""A real server process reuses its database connections: pages and websockets open none per
request on PostgreSQL (psycopg's pool), and on SQLite the websocket thread keeps one while each
HTTP request closes its own (chatsite/connections.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from websockets.asyncio.client import connect

from tests.e2e.servers import Person, Server

ROUNDS = 15


@pytest.fixture(scope="module")
def server(e2e_env: dict[str, str]) -> Iterator[Server]:
    server = Server(e2e_env, "connections")
    yield server
    server.stop()


async def _open_and_close_sockets(server: Server, person: Person, conversation_id: int) -> None:
    url = f"{server.ws_url}/ws/chat/{conversation_id}/"
    headers = {"Cookie": person.cookie_header, "Origin": server.url}
    for _ in range(ROUNDS):
        async with connect(url, additional_headers=headers, open_timeout=10):
            pass  # accepted: the handshake's reads and the socket's row were done


def _traffic(server: Server, person: Person, conversation_id: int) -> None:
    for _ in range(ROUNDS):
        person.get(f"/chat/{conversation_id}/")
    asyncio.run(_open_and_close_sockets(server, person, conversation_id))


def _sqlite_handles(pid: int, database: Path) -> int:
    handles = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if Path(os.readlink(fd)) == database:
                handles += 1
        except OSError:
            continue
    return handles


def _backends(url: str) -> set[int]:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    return {row[0] for row in rows}


def test_pages_and_sockets_reuse_the_servers_database_connections(
    server: Server, e2e_env: dict[str, str]
) -> None:
    person = Person(server.url)
    person.sign_up(f"conn{os.getpid()}")
    conversation_id = person.new_conversation()
    _traffic(server, person, conversation_id)  # warm: the pool or the kept connection exists
    url = e2e_env["DATABASE_URL"]
    if url.startswith("postgres"):
        before = _backends(url)
        assert before, "the server kept no connection between requests (no pool)"
        _traffic(server, person, conversation_id)
        # The pool may add one when a page and a socket's trip overlap; not one per request.
        assert len(_backends(url) - before) <= 1
    else:
        database = Path(url.removeprefix("sqlite:///"))
        _traffic(server, person, conversation_id)
        handles = _sqlite_handles(server.process.pid, database)
        # The websocket thread's connection stays; the pages' were closed. SQLite keeps a
        # closed connection's descriptor open while another connection of the process holds
        # a lock on the file (the websocket thread's may), and reuses it for the next
        # connection. A page's connection closes only after its response is
        # sent, so the next page's may open before it closes: two such descriptors, hence up
        # to three. Without the close at each request's end this is 10 or more here.
        assert 1 <= handles <= 3, f"{handles} open SQLite files after {ROUNDS} pages"
