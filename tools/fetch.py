"""The URL fetcher tool: the text of a public web page. Off until an admin switches it on.

It never reaches inside the site's network: every address a URL's host resolves to must be a
public one (`ipaddress`'s `is_global`; an IPv4 address inside IPv6 is judged as itself), checked
by the resolver the connection itself uses, so what was checked is what is connected to (no
second lookup to rebind), and again for every redirect (each one a new request, at most
FETCH_MAX_REDIRECTS). An IP written as the host (in any spelling: dotted, decimal, octal,
hex, IPv6) is checked the same way. Only http and https, no credentials in the URL, no proxy
from the environment. Sizes and times are bounded: FETCH_MAX_BYTES read at most (the rest cut,
and said), FETCH_TIMEOUT_SECONDS in all (a server that drips is stopped). Only text comes back
(HTML as its visible text; plain text, Markdown, JSON, XML as they are); anything else is
refused. `TOOL_FETCH_ALLOWED_NETWORKS` lets an admin open named private networks (an intranet).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from django.conf import settings
from yarl import URL

from tools.registry import REGISTRY, Tool, ToolError

FETCH_MAX_BYTES = 1_000_000
FETCH_TIMEOUT_SECONDS = 15.0
FETCH_MAX_REDIRECTS = 5
USER_AGENT = "Chatsite-fetch/1.0 (a chat assistant reading a page for a person)"
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml")
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _allowed(address: _Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in ipaddress.ip_network(n) for n in settings.TOOL_FETCH_ALLOWED_NETWORKS):
        return True
    return address.is_global and not address.is_multicast


def _refused(host: str) -> ToolError:
    return ToolError(f"{host[:80]} is not a public address: this tool reads public web pages only.")


class PublicResolver(AbstractResolver):
    """Resolves a host for the connection, and refuses it if any address is not public."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        except socket.gaierror:
            raise ToolError(f"{host[:80]} could not be found.") from None
        results: list[ResolveResult] = []
        for found_family, _, proto, _, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if not _allowed(address):
                raise _refused(host)
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(address),
                    port=int(sockaddr[1]),
                    family=found_family,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        return results

    async def close(self) -> None:
        return None


def _checked(url: URL) -> URL:
    if url.scheme not in ("http", "https"):
        raise ToolError("Only http and https addresses can be read.")
    if url.user is not None or url.password is not None:
        raise ToolError("An address with a user name or password is not read.")
    host = url.raw_host or ""
    if not host:
        raise ToolError("That address has no host.")
    literal = _ip_literal(host)
    if literal is None:
        return url  # a name: the resolver checks every address it becomes
    if not _allowed(literal):
        raise _refused(host)
    return url


def _ip_literal(host: str) -> _Address | None:
    """The address a host that is an IP stands for, in any of its spellings: dotted, or the
    old decimal, octal, hex and short forms (`2130706433`, `0177.0.0.1`, `127.1`) that
    resolvers accept."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


class _Text(HTMLParser):
    """A page's visible text and its title."""

    SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                        "section", "article", "header", "footer", "pre", "blockquote"})  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self.skipping = 0
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag in self.SKIPPED:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in self.SKIPPED and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skipping:
            self.parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return "\n".join(line for line in lines if line)


async def fetch(address: str) -> str:
    url = _checked(URL(address.strip()))
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS)
    connector = aiohttp.TCPConnector(resolver=PublicResolver(), use_dns_cache=False)
    try:
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        ) as session:
            for _ in range(FETCH_MAX_REDIRECTS + 1):
                async with session.get(url, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        location = response.headers.get("Location", "")
                        url = _checked(url.join(URL(location)))
                        continue
                    return await _read(url, response)
            raise ToolError(f"More than {FETCH_MAX_REDIRECTS} redirects: not followed further.")
    except TimeoutError:
        raise ToolError(f"The page did not arrive within {FETCH_TIMEOUT_SECONDS:g} s.") from None
    except aiohttp.ClientError as failure:
        raise ToolError(f"The page could not be read ({type(failure).__name__}).") from None


async def _read(url: URL, response: aiohttp.ClientResponse) -> str:
    if response.status >= 400:
        raise ToolError(f"The server answered {response.status} {response.reason or ''}".strip())
    kind = response.content_type or ""
    if not kind.startswith(TEXT_TYPES):
        raise ToolError(f"That is not a text page ({kind or 'no type given'}): not read.")
    body = bytearray()
    while len(body) <= FETCH_MAX_BYTES:
        piece = await response.content.read(FETCH_MAX_BYTES + 1 - len(body))
        if not piece:
            break
        body += piece
    cut = len(body) > FETCH_MAX_BYTES
    text = body[:FETCH_MAX_BYTES].decode(response.charset or "utf-8", errors="replace")
    title = ""
    if kind in ("text/html", "application/xhtml+xml"):
        page = _Text()
        page.feed(text)
        title, text = " ".join("".join(page.title).split()), page.text()
    head = f"{title}\n{url}\n\n" if title else f"{url}\n\n"
    tail = f"\n[cut: only the first {FETCH_MAX_BYTES:,} bytes were read]" if cut else ""
    return head + text + tail


async def _run(arguments: dict[str, Any]) -> str:
    return await fetch(arguments["url"])


FETCHER = REGISTRY.register(
    Tool(
        name="fetch_url",
        description=(
            "The text of a public web page (HTML as its visible text; plain text, Markdown, "
            "JSON and XML as they are), at most about a million characters. Use it to read a "
            "page the person names or one you need to answer."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "url": {
                    "type": "string",
                    "description": "An http or https address.",
                    "maxLength": 2000,
                }
            },
            "required": ["url"],
            "additionalProperties": False,
        },
        run=_run,
        off_by_default=True,
    )
)
