"""The hostile handshakes against a real daphne process: what a browser really gets (an HTTP
403 to the upgrade, or an accepted socket closed with the app's code), not what the test
communicator reports."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.e2e.servers import Person
from tests.hostile_cases import HANDSHAKES, ORIGIN_REFUSED, SAME_ORIGIN

_people: dict[str, Any] = {}


def _person(live_server_url: str, role: str) -> tuple[Person, int]:
    """Two signed-up people, each with a conversation (made once for the module)."""
    if role not in _people:
        person = Person(live_server_url)
        person.sign_up(f"hs{role}{int(time.time() * 1000)}")
        _people[role] = (person, person.new_conversation())
    return _people[role]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("origin", "who", "path", "expected"),
    [c[1:] for c in HANDSHAKES],
    ids=[c[0] for c in HANDSHAKES],
)
def test_hostile_handshakes_against_daphne(
    live_server_url: str, origin: bytes | None, who: str | None, path: str, expected: int | None
) -> None:
    owner, conversation_id = _person(live_server_url, "owner")
    other, _ = _person(live_server_url, "other")
    headers: dict[str, str] = {}
    if origin is not None:
        headers["Origin"] = live_server_url if origin == SAME_ORIGIN else origin.decode()
    if who is not None:
        headers["Cookie"] = (owner if who == "owner" else other).cookie_header
    target = conversation_id if path == "own" else conversation_id + 100_000
    url = live_server_url.replace("http://", "ws://") + f"/ws/chat/{target}/"
    asyncio.run(_check(url, headers, expected))


async def _check(url: str, headers: dict[str, str], expected: int | None) -> None:
    try:
        socket = await connect(url, additional_headers=headers, open_timeout=10)
    except InvalidStatus as refused:
        assert expected == ORIGIN_REFUSED == refused.response.status_code
        return
    assert expected != ORIGIN_REFUSED, "a foreign or missing origin was let in"
    async with socket:
        if expected is None:
            await socket.send('{"type": "stop"}')  # open and answering nothing harmful
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(socket.recv(), 0.3)
            return
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(socket.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == expected
