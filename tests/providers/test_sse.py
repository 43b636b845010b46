"""The providers' server-sent-event decoder, against the WHATWG rules and random deliveries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers import sse
from tests.strategies import byte_splits, sse_events, sse_line_ends


def _decode(pieces: list[bytes]) -> list[tuple[str, bytes]]:
    decoder = sse.Decoder()
    out = [event for piece in pieces for event in decoder.feed(piece)]
    return out + decoder.end()


@settings(max_examples=300, deadline=None)
@given(events=sse_events, end=sse_line_ends, data=st.data())
def test_any_events_in_any_pieces_with_any_line_ends_decode_as_sent(
    events: list[tuple[str, list[str], str | None]], end: str, data: st.DataObject
) -> None:
    body = ""
    for name, lines, comment in events:
        if comment is not None:
            body += f":{comment}{end}"
        if name:
            body += f"event: {name}{end}"
        body += "".join(f"data: {line}{end}" for line in lines) + end
    whole = body.encode()
    pieces = data.draw(byte_splits(whole))
    expected = [(name, "\n".join(lines).encode()) for name, lines, _ in events]
    assert _decode(pieces) == expected


def test_the_standards_own_cases() -> None:
    body = (
        b"\xef\xbb\xbf: a comment, then a byte order mark before it\n"
        b"data\n\n"  # a field with no colon: empty data, still an event
        b"data:no space\n\n"
        b"data:  two spaces keep one\n\n"
        b"event: named\nid: 7\nretry: 10\nunknown: ignored\ndata: x\n\n"
        b"event: no data is no event\n\n"
        b"data: unfinished at the end"
    )
    assert _decode([body]) == [
        ("", b""),
        ("", b"no space"),
        ("", b" two spaces keep one"),
        ("named", b"x"),
    ]


def test_a_blank_line_ended_by_the_bodys_last_cr_dispatches() -> None:
    assert _decode([b"data: last\r", b"\r"]) == [("", b"last")]


async def test_drain_reads_what_is_left_and_gives_up_after_its_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read: list[bytes] = []

    async def finite() -> AsyncIterator[bytes]:
        for piece in (b"0\r\n", b"\r\n"):
            read.append(piece)
            yield piece

    await sse.drain(finite())
    assert read == [b"0\r\n", b"\r\n"]

    async def endless() -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0.01)
            yield b": still here\n"

    monkeypatch.setattr(sse, "DRAIN_TIMEOUT", 0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await sse.drain(endless())
    assert loop.time() - started < 1.0


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _utf8(text: str) -> bytes:
    """As a provider's body would carry `text` (a lone surrogate as its three bytes)."""
    return text.encode("utf-8", "surrogatepass")


def _json_module_reading(data: bytes) -> object:
    """What the json module reads in `data`, or that it reads nothing."""
    try:
        return json.loads(data)
    except ValueError:
        return "unreadable"


@settings(max_examples=400, deadline=None)
@given(
    event=st.one_of(
        _JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        _JSON_VALUES.map(
            lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")
        ),
        st.binary(max_size=40),
        st.sampled_from(
            [b"NaN", b'{"a": -Infinity}', b'\xef\xbb\xbf{"a": 1}', b'{"a": "\\ud800"}']
        ),
    )
)
def test_an_event_reads_as_the_json_module_reads_it(event: bytes) -> None:
    """orjson reads events, the json module what orjson refuses: an event reads as the json
    module alone read it, within 64-bit integers (the documented difference)."""
    expected = _json_module_reading(event)
    try:
        read: object = sse.loads(event)
    except sse.Unreadable:
        read = "unreadable"
    if not isinstance(expected, dict) and expected != "unreadable":
        expected = "unreadable"  # JSON, but not an object
    assert repr(read) == repr(expected)
