"""Two real worker processes sharing PostgreSQL and Redis: one reply, seen and stopped anywhere."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.chat.helpers import ClientView
from tests.e2e.servers import Person, Server
from tests.fakes.anthropic import text_reply
from tests.fakes.sse_server import SSEServer

pytestmark = pytest.mark.services


@pytest.fixture
def workers(services_env: dict[str, str]) -> Iterator[tuple[Server, Server]]:
    a, b = Server(services_env, "worker-a"), Server(services_env, "worker-b")
    yield a, b
    a.stop()
    b.stop()


async def _open(server: Server, person: Person, conversation_id: int) -> ClientConnection:
    ws_url = server.url.replace("http://", "ws://") + f"/ws/chat/{conversation_id}/"
    return await connect(
        ws_url, additional_headers={"Cookie": person.cookie_header, "Origin": server.url}
    )


async def _frames_until_end(tab: ClientConnection, view: ClientView) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(tab.recv(), 15))
        frames.append(frame)
        view.apply(frame)
        if frame["type"] == "message_stop" or (frame["type"] == "error" and "message_id" in frame):
            return frames


async def _first(tab: ClientConnection, kind: str, view: ClientView) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(tab.recv(), 15))
        view.apply(frame)
        if frame["type"] == kind:
            return frame


async def test_a_reply_started_on_one_worker_streams_to_a_tab_on_the_other(
    workers: tuple[Server, Server], provider: SSEServer
) -> None:
    a, b = workers
    person = Person(a.url)
    await asyncio.to_thread(person.sign_up, "wanda")
    conversation_id = await asyncio.to_thread(person.new_conversation)
    chunks = [f"across{i} " for i in range(120)]
    provider.enqueue(text_reply(chunks, delay=0.01))
    tab_a, tab_b = await _open(a, person, conversation_id), await _open(b, person, conversation_id)
    await tab_a.send(json.dumps({"type": "send", "content": "hello from A"}))
    view_a, view_b = ClientView(), ClientView()
    frames_a, frames_b = await asyncio.gather(
        _frames_until_end(tab_a, view_a), _frames_until_end(tab_b, view_b)
    )
    message_id = frames_a[-1]["message_id"]
    assert view_b.text[message_id] == view_a.text[message_id] == "".join(chunks)
    assert frames_b[-1]["type"] == "message_stop"
    assert any(f["type"] == "user_message" for f in frames_b)
    await tab_a.close()
    await tab_b.close()


async def test_stop_through_the_other_worker_closes_the_upstream_stream(
    workers: tuple[Server, Server], provider: SSEServer
) -> None:
    a, b = workers
    person = Person(a.url)
    await asyncio.to_thread(person.sign_up, "stella")
    conversation_id = await asyncio.to_thread(person.new_conversation)
    provider.enqueue(text_reply([f"long{i} " for i in range(1000)], delay=0.01))
    tab_a, tab_b = await _open(a, person, conversation_id), await _open(b, person, conversation_id)
    await tab_a.send(json.dumps({"type": "send", "content": "go long"}))
    view_a, view_b = ClientView(), ClientView()
    await _first(tab_b, "text_delta", view_b)
    await asyncio.sleep(1.5)  # long enough for a checkpoint of partial text

    # A reload through either worker shows the partial text (A: live; B: the checkpoint).
    page_a = await asyncio.to_thread(person.get, f"/chat/{conversation_id}/")
    page_b = await asyncio.to_thread(person.get, f"/chat/{conversation_id}/", b.url)
    for page in (page_a, page_b):
        assert 'data-status="streaming"' in page and "long0 long1" in page
        assert '<div class="indicator" id="indicator">' in page

    stop_sent = time.monotonic()
    await tab_b.send(json.dumps({"type": "stop"}))
    recorded = await asyncio.to_thread(provider.wait_for_disconnect, 2.0)
    assert recorded.disconnected_at is not None and not recorded.completed
    assert recorded.disconnected_at - stop_sent < 0.3
    end_a = (await _frames_until_end(tab_a, view_a))[-1]
    end_b = (await _frames_until_end(tab_b, view_b))[-1]
    assert end_a["stop_reason"] == end_b["stop_reason"] == "stopped"
    page = await asyncio.to_thread(person.get, f"/chat/{conversation_id}/", b.url)
    assert 'data-status="stopped"' in page
    await tab_a.close()
    await tab_b.close()


async def test_a_killed_worker_s_reply_is_found_interrupted_and_settled_by_the_other(
    services_env: dict[str, str], provider: SSEServer
) -> None:
    import signal

    import psycopg

    env = {**services_env, "REPLY_STALE_AFTER": "1.5", "REPLY_SWEEP_INTERVAL": "1"}
    doomed, survivor = Server(env, "worker-doomed"), Server(env, "worker-survivor")
    tab: ClientConnection | None = None
    try:
        person = Person(doomed.url)
        await asyncio.to_thread(person.sign_up, "kim")
        conversation_id = await asyncio.to_thread(person.new_conversation)
        provider.enqueue(text_reply([f"lost{i} " for i in range(1000)], delay=0.01))
        tab = await _open(doomed, person, conversation_id)
        await tab.send(json.dumps({"type": "send", "content": "then the power went out"}))
        await _first(tab, "text_delta", ClientView())
        await asyncio.sleep(1.2)  # a checkpoint saved some text
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(5)
        recorded = await asyncio.to_thread(provider.wait_for_disconnect, 2.0)
        assert not recorded.completed  # the dead worker's upstream stream is gone too
        await asyncio.sleep(3)  # past REPLY_STALE_AFTER: the survivor's sweep ends it
        page = await asyncio.to_thread(person.get, f"/chat/{conversation_id}/", survivor.url)
        assert 'data-status="interrupted"' in page and "lost0 lost1" in page
        assert '<div class="indicator" id="indicator" hidden>' in page
        with psycopg.connect(services_env["DATABASE_URL"]) as db:
            usage = db.execute(
                "SELECT status, coins_charged FROM billing_llmusage WHERE conversation_id = %s",
                (conversation_id,),
            ).fetchone()
            account = db.execute(
                "SELECT a.balance, SUM(e.amount) FROM billing_coinaccount a "
                "JOIN billing_ledgerentry e ON e.account_id = a.id "
                "JOIN auth_user u ON u.id = a.user_id WHERE u.username = 'kim' GROUP BY a.balance"
            ).fetchone()
        assert usage is not None and account is not None
        (status, coins), (balance, total) = usage, account
        assert status == "interrupted" and coins > 0
        assert balance == total == 1000 - coins  # the hold came back; only the text shown paid
    finally:
        if tab is not None:
            await tab.close()
        doomed.stop()
        survivor.stop()
