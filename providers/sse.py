"""Server-sent events, read straight from a provider's response body.

The SDKs make the request; reading the stream here costs a small part of what the SDKs spend
per event (typed models built through several async generators would be most of the CPU a
streaming reply costs, docs/benchmarks.md). Parsed as the WHATWG HTML standard
says: lines end in CRLF, LF or CR; a blank line dispatches; `:` starts a comment; `data` lines
join with LF. Events keep their data as bytes, which `orjson.loads` takes as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import orjson

# After a stream's last event, how long its remaining bytes (the end of the chunked body) are
# awaited: read to the end, the connection goes back to the pool for the next reply instead
# of costing a new TCP and TLS handshake.
DRAIN_TIMEOUT = 1.0

_BOM = b"\xef\xbb\xbf"


class Decoder:
    """Bytes in, in any pieces; whole `(event, data)` pairs out (`event` is "" when unnamed)."""

    __slots__ = ("_data", "_event", "_rest", "_started")

    def __init__(self) -> None:
        self._rest = b""
        self._event = ""
        self._data: list[bytes] = []
        self._started = False

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        if not self._started:
            self._started = True
            chunk = chunk.removeprefix(_BOM)
        if self._rest:
            chunk, self._rest = self._rest + chunk, b""
        lines = chunk.splitlines(keepends=True)
        # A last line without its end is kept for the next piece; so is one ending in CR,
        # which may be the first half of a CRLF.
        if lines and not lines[-1].endswith(b"\n"):
            self._rest = lines.pop()
        return self._lines(lines)

    def end(self) -> list[tuple[str, bytes]]:
        """At the end of the body: a last line ended by CR is a line (an unfinished event is
        dropped, as the standard says)."""
        rest, self._rest = self._rest, b""
        return self._lines([rest]) if rest.endswith(b"\r") else []

    def _lines(self, lines: list[bytes]) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if not line:
                if self._data:
                    out.append((self._event, b"\n".join(self._data)))
                self._event, self._data = "", []
            elif line[0] != 58:  # b":" starts a comment (OpenRouter's keep-alives)
                name, colon, value = line.partition(b":")
                if colon and value[:1] == b" ":
                    value = value[1:]
                if name == b"data":
                    self._data.append(value)
                elif name == b"event":
                    self._event = value.decode("utf-8", "replace")
        return out


class Unreadable(ValueError):
    """An event whose data is not a JSON object: the provider sent what it does not document."""


def loads(data: bytes) -> dict[str, Any]:
    """An event's JSON object (`Unreadable` for anything else).

    Read by orjson, for the CPU per streamed event (docs/benchmarks.md); what it refuses and
    the json module reads (a lone surrogate's escape, NaN, a byte-order
    mark) is read by the json module. One difference stays: an integer past 64 bits reads as a
    float, which the adapters, reading counts only as int, take as absent."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(data)
        except ValueError:
            raise Unreadable("an event's data is not JSON") from None
    if not isinstance(value, dict):
        raise Unreadable("an event's data is not a JSON object")
    return value


# Reading fields of an event: a value of another type than documented reads as absent.


def text(event: dict[str, Any], key: str) -> str:
    value = event.get(key)
    return value if isinstance(value, str) else ""


def obj(event: dict[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    return value if isinstance(value, dict) else {}


def objs(event: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = event.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


async def drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what is left of a finished stream's body, briefly, so its connection is reused."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DRAIN_TIMEOUT):
            async for _ in chunks:
                pass
