"""Tests never reach past loopback: the guard in conftest fails any test that tries."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import NetworkBlocked


@pytest.mark.parametrize("address", [("93.184.216.34", 443), ("10.0.0.1", 80), ("example.com", 80)])
def test_connecting_past_loopback_fails(address: tuple[str, int]) -> None:
    with socket.socket() as sock, pytest.raises(NetworkBlocked):
        sock.connect(address)


async def test_the_sdk_cannot_reach_a_real_provider() -> None:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key="sk-ant-x", max_retries=0)
    with pytest.raises(anthropic.APIConnectionError) as info:
        await client.messages.create(
            model="claude-sonnet-5-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    cause = info.value.__cause__
    while cause is not None and not isinstance(cause, NetworkBlocked):
        cause = cause.__cause__ or cause.__context__
    assert isinstance(cause, NetworkBlocked)
    await client.close()


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as sock:
            sock.connect(server.getsockname())
