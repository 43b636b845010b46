"""The URL fetcher against hostile addresses and servers: it reads public pages only, in any
spelling of an address, through DNS and through redirects, and bounds what it reads and how long
it waits.

A local server on 127.0.0.2 plays a public site (the tests open just that address with the
admin's setting, TOOL_FETCH_ALLOWED_NETWORKS); 127.0.0.1 stays the site's own network. The
network guard (pytest-socket) would fail any test that connected past loopback, so a refusal
that failed could not pass unseen."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tools import fetch as fetch_module
from tools.fetch import FETCHER, fetch
from tools.registry import ToolError, run_tool

PUBLIC = "127.0.0.2"


@pytest.fixture(autouse=True)
def _the_fake_public_site_is_public(settings: Any) -> None:
    settings.TOOL_FETCH_ALLOWED_NETWORKS = [f"{PUBLIC}/32"]


async def _page(request: web.Request) -> web.Response:
    return web.Response(
        text="<html><head><title>A  page</title><style>p{}</style></head><body>"
        "<h1>Hello</h1><script>alert(1)</script><p>First &amp; <b>bold</b>.</p>"
        "<ul><li>one</li><li>two</li></ul></body></html>",
        content_type="text/html",
    )


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["to"])


async def _loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def _huge(request: web.Request) -> web.Response:
    return web.Response(text="x" * 3_000_000, content_type="text/plain")


async def _drip(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    for _ in range(100):
        await response.write(b"x")
        await asyncio.sleep(0.2)
    return response


async def _image(request: web.Request) -> web.Response:
    return web.Response(body=b"\x89PNG\r\n", content_type="image/png")


async def _json(request: web.Request) -> web.Response:
    return web.json_response({"temperature": 21, "city": "Lisbon"})


async def _missing(request: web.Request) -> web.Response:
    return web.Response(status=404, text="no")


@pytest.fixture
async def site() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/page", _page)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/loop", _loop)
    app.router.add_get("/huge", _huge)
    app.router.add_get("/drip", _drip)
    app.router.add_get("/image", _image)
    app.router.add_get("/data.json", _json)
    app.router.add_get("/missing", _missing)
    runner = web.AppRunner(app)
    await runner.setup()
    server = web.TCPSite(runner, PUBLIC, 0)
    await server.start()
    port = runner.addresses[0][1]
    yield f"http://{PUBLIC}:{port}"
    await runner.cleanup()


async def test_a_public_page_is_read_as_its_visible_text(site: str) -> None:
    text = await fetch(f"{site}/page")
    assert text == f"A page\n{site}/page\n\nHello\nFirst & bold.\none\ntwo"
    assert "alert" not in text and "p{}" not in text


async def test_json_is_read_as_it_is_and_a_relative_redirect_is_followed(site: str) -> None:
    assert '"temperature": 21' in await fetch(f"{site}/data.json")
    followed = await fetch(f"{site}/redirect?to=/page")
    assert followed.startswith(f"A page\n{site}/page")


HOSTILE_ADDRESSES = [
    "http://127.0.0.1/",
    "http://localhost/",
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://[::]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://2130706433/",  # 127.0.0.1, decimal
    "http://0177.0.0.1/",  # octal
    "http://0x7f.0.0.1/",  # hex
    "http://127.1/",  # short form
    "http://[::ffff:127.0.0.1]/",  # IPv4 inside IPv6
    "http://[::ffff:a9fe:a9fe]/",  # 169.254.169.254 inside IPv6, in hex
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://[fd00::1]/",  # unique local
    "http://[fe80::1]/",  # link-local
    "http://224.0.0.1/",  # multicast
]


@pytest.mark.parametrize("address", HOSTILE_ADDRESSES)
async def test_no_address_inside_a_network_is_read(address: str) -> None:
    with pytest.raises(ToolError, match="public"):
        await fetch(address)


@pytest.mark.parametrize(
    "address",
    ["file:///etc/passwd", "ftp://example.com/", "gopher://x/", "javascript:alert(1)", "data:,x"],
)
async def test_only_http_and_https(address: str) -> None:
    with pytest.raises(ToolError, match="Only http and https"):
        await fetch(address)


async def test_credentials_in_an_address_are_refused() -> None:
    with pytest.raises(ToolError, match="user name"):
        await fetch("http://admin:secret@example.com/")


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:1/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8000/",
        "http://2130706433/",
        "file:///etc/passwd",
    ],
)
async def test_a_redirect_inside_the_network_is_refused(site: str, target: str) -> None:
    with pytest.raises(ToolError, match=r"public|Only http"):
        await fetch(f"{site}/redirect?to={target}")


async def test_endless_redirects_end(site: str) -> None:
    with pytest.raises(ToolError, match="redirects"):
        await fetch(f"{site}/loop")


def _resolving(names: dict[str, list[str]]) -> Any:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port or 80) if ":" not in a else (a, port or 80, 0, 0))
                for a in names[host]
            ]  # fmt: skip
        return real(host, port, *args, **kwargs)

    return getaddrinfo


@pytest.mark.parametrize(
    "addresses",
    [["10.1.2.3"], ["93.184.216.34", "10.0.0.1"], ["::1"], ["169.254.169.254"]],
    ids=["private", "one-of-several-private", "loopback-v6", "metadata"],
)
async def test_a_name_that_resolves_inside_the_network_is_refused(
    monkeypatch: pytest.MonkeyPatch, addresses: list[str]
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _resolving({"intranet.example": addresses}))
    with pytest.raises(ToolError, match="public"):
        await fetch("http://intranet.example/")


async def test_a_huge_page_is_cut_and_says_so(site: str) -> None:
    text = await fetch(f"{site}/huge")
    assert text.endswith("[cut: only the first 1,000,000 bytes were read]")
    assert text.count("x") == fetch_module.FETCH_MAX_BYTES


async def test_a_server_that_drips_is_stopped_in_time(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch_module, "FETCH_TIMEOUT_SECONDS", 1.0)
    began = asyncio.get_running_loop().time()
    with pytest.raises(ToolError, match="within 1 s"):
        await fetch(f"{site}/drip")
    assert asyncio.get_running_loop().time() - began < 3


async def test_what_is_not_text_is_not_read(site: str) -> None:
    with pytest.raises(ToolError, match="not a text page"):
        await fetch(f"{site}/image")


async def test_an_error_page_is_said(site: str) -> None:
    with pytest.raises(ToolError, match="404"):
        await fetch(f"{site}/missing")


async def test_without_the_admin_s_network_the_fake_site_is_private_too(
    site: str, settings: Any
) -> None:
    settings.TOOL_FETCH_ALLOWED_NETWORKS = []
    with pytest.raises(ToolError, match="public"):
        await fetch(f"{site}/page")


async def test_as_a_tool_call_a_refusal_is_an_error_result(site: str) -> None:
    assert FETCHER.off_by_default
    ok = await run_tool(FETCHER, {"url": f"{site}/page"})
    assert not ok.is_error and "Hello" in ok.content
    refused = await run_tool(FETCHER, {"url": "http://169.254.169.254/"})
    assert refused.is_error and "public" in refused.content
