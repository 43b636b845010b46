"""The websocket origin rule (chatsite/origins.py), read strictly: the handshakes a browser
really sends pass; anything else, however close, is refused. The whole stack's refusals are in
tests/chat/test_hostile_input.py and, against real servers, tests/e2e/test_handshakes.py."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatsite.origins import parse_origin, same_site


def _scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "websocket", "headers": list(headers)}


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (b"http://127.0.0.1:8000", b"127.0.0.1:8000"),
        (b"http://localhost", b"localhost"),
        (b"http://localhost:80", b"localhost"),
        (b"HTTP://LOCALHOST:8000", b"localhost:8000"),
    ],
)
def test_a_page_of_the_site_may_open_a_socket(origin: bytes, host: bytes) -> None:
    assert same_site(_scope((b"origin", origin), (b"host", host)))


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (b"https://localhost", b"localhost:8000"),  # the port a browser reached differs
        (b"http://localhost:8000", b"localhost"),
        (b"https://localhost", b"localhost:80"),
        (b"http://127.0.0.1:8000", b"localhost:8000"),  # both allowed, yet not the same place
        (b"http://evil.example:8000", b"evil.example:8000"),  # same place, not an allowed host
        (b"http://127.0.0.1:8000", b"127.0.0.1:8000, evil"),
        (b"http://127.0.0.1:8000", b""),
        (b"http://127.0.0.1:8000#", b"127.0.0.1:8000"),
        (b"http://127.0.0.1:8000?", b"127.0.0.1:8000"),
        (b"http://127.0.0.1:0", b"127.0.0.1:0"),
        (b"http://127.0.0.1:8000 ", b"127.0.0.1:8000"),
        (b"http://127.0.0.1\t:8000", b"127.0.0.1:8000"),
        (b"http://127.0.0.1%2e:8000", b"127.0.0.1:8000"),
        (b"http://127.0.0.1:8000\xff", b"127.0.0.1:8000"),
        (b"\\\\127.0.0.1:8000", b"127.0.0.1:8000"),
        (b"//127.0.0.1:8000", b"127.0.0.1:8000"),
    ],
)
def test_anything_else_is_refused(origin: bytes, host: bytes) -> None:
    assert not same_site(_scope((b"origin", origin), (b"host", host)))


def test_no_host_or_two_origins_is_refused() -> None:
    assert not same_site(_scope((b"origin", b"http://127.0.0.1:8000")))
    two = _scope(
        (b"origin", b"http://evil.example"),
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
    )
    assert not same_site(two)


def test_behind_a_proxy_the_forwarded_host_is_the_one_compared(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    origin = (b"origin", b"https://chat.example.com")
    upstream = (b"host", b"127.0.0.1:8001")
    forwarded = (b"x-forwarded-host", b"chat.example.com")
    assert not same_site(_scope(origin, upstream, forwarded))  # Host is the proxy's upstream
    settings.USE_X_FORWARDED_HOST = True
    assert same_site(_scope(origin, upstream, forwarded))
    assert not same_site(_scope(origin, upstream))  # no forwarded host: nothing to compare


def test_an_origin_trusted_for_forms_is_trusted_for_sockets(settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com"]
    assert same_site(_scope((b"origin", b"https://app.example.com"), (b"host", b"127.0.0.1")))
    assert not same_site(_scope((b"origin", b"https://app.example.com:1"), (b"host", b"x")))


@given(st.text(max_size=60))
def test_an_origin_that_parses_is_only_scheme_host_and_port(text: str) -> None:
    parsed = parse_origin(text)
    if parsed is not None:
        scheme, place = parsed
        assert text.count("/") == 2
        assert not set(text) & set("@\\?#%;, \t\r\n\x00")
        port = f":{place.port}" if place.port is not None else ""
        assert parse_origin(f"{scheme}://{place.host}{port}") == parsed
