"""Tests never reach past loopback: pytest-socket (`--allow-hosts`) fails any test that tries."""

from __future__ import annotations

import socket

import pytest
from pytest_socket import SocketConnectBlockedError


@pytest.mark.parametrize("address", [("93.184.216.34", 443), ("10.0.0.1", 80)])
def test_connecting_past_loopback_fails(address: tuple[str, int]) -> None:
    with socket.socket() as sock, pytest.raises(SocketConnectBlockedError):
        sock.connect(address)


async def test_the_sdk_cannot_reach_a_real_provider() -> None:
    import anthropic

    # An address, not a name: the guard blocks connections, and this machine resolves no names.
    client = anthropic.AsyncAnthropic(
        api_key="sk-ant-x", base_url="https://160.79.104.10", max_retries=0
    )
    with pytest.raises(anthropic.APIConnectionError) as info:
        await client.messages.create(
            model="claude-sonnet-5-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert _blocked(info.value)
    await client.close()


def _blocked(error: BaseException | None) -> bool:
    """Whether the guard's error is in `error`'s causes (a connection attempt's task group
    reports it inside an exception group)."""
    while error is not None:
        if isinstance(error, SocketConnectBlockedError):
            return True
        if isinstance(error, BaseExceptionGroup) and any(map(_blocked, error.exceptions)):
            return True
        error = error.__cause__ or error.__context__
    return False


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as sock:
            sock.connect(server.getsockname())
