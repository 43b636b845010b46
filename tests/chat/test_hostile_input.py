"""Hostile frames and handshakes: a clear error, a socket that still works (or the right close
code), and nothing written, held or sent to a provider."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from billing.models import LedgerEntry, LlmUsage
from chat import frames, runner
from chat.models import Conversation, Message
from chatsite.asgi import application
from tests.chat.helpers import connect, receive, send, until_end
from tests.fakes.sse_server import SSEServer
from tests.hostile_cases import HANDSHAKES, HOST, ORIGIN_REFUSED

pytestmark = pytest.mark.django_db(transaction=True)

LONG = 32_000 + 1
DEEP = "[" * 5_000 + "]" * 5_000

# (name, raw frame text or bytes, what the error message must mention)
HOSTILE_FRAMES: list[tuple[str, str | bytes, str]] = [
    ("binary frame", b'{"type": "stop"}', "Binary"),
    ("empty frame", "", "empty"),
    ("blank frame", "   \n ", "empty"),
    ("not JSON", "{", "not valid JSON"),
    ("JSON array", "[]", "JSON object"),
    ("JSON string", '"send"', "JSON object"),
    ("JSON number", "42", "JSON object"),
    ("JSON null", "null", "JSON object"),
    ("no type", "{}", "Unknown frame type"),
    ("type not text", '{"type": 5}', "Unknown frame type"),
    ("unknown type", '{"type": "delete_all"}', "Unknown frame type"),
    ("type in capitals", '{"type": "SEND", "content": "x"}', "Unknown frame type"),
    ("client api_key", '{"type": "send", "content": "x", "api_key": "sk-evil"}', "api_key"),
    ("client base_url", '{"type": "send", "content": "x", "base_url": "http://e"}', "base_url"),
    ("user id from frame", '{"type": "send", "content": "x", "user_id": 2}', "user_id"),
    ("conversation from frame", '{"type": "stop", "conversation_id": 9}', "conversation_id"),
    ("no content", '{"type": "send"}', "non-empty"),
    ("empty content", '{"type": "send", "content": ""}', "non-empty"),
    ("blank content", '{"type": "send", "content": " \\t\\n "}', "non-empty"),
    ("content a number", '{"type": "send", "content": 5}', "non-empty"),
    ("content a list", '{"type": "send", "content": ["a"]}', "non-empty"),
    ("content an object", '{"type": "send", "content": {"a": 1}}', "non-empty"),
    ("content too long", json.dumps({"type": "send", "content": "a" * LONG}), "too long"),
    ("content with NUL", '{"type": "send", "content": "a\\u0000b"}', "NUL"),
    ("lone surrogate", '{"type": "send", "content": "\\ud800x"}', "Unicode"),
    ("max_tokens text", '{"type": "send", "content": "x", "max_tokens": "9"}', "whole number"),
    ("max_tokens float", '{"type": "send", "content": "x", "max_tokens": 1.5}', "whole number"),
    ("max_tokens bool", '{"type": "send", "content": "x", "max_tokens": true}', "whole number"),
    ("max_tokens zero", '{"type": "send", "content": "x", "max_tokens": 0}', "between"),
    ("max_tokens negative", '{"type": "send", "content": "x", "max_tokens": -5}', "between"),
    ("max_tokens huge", '{"type": "send", "content": "x", "max_tokens": 1e400}', "finite"),
    (
        "max_tokens 10**30",
        '{"type": "send", "content": "x", "max_tokens": ' + "9" * 30 + "}",
        "between",
    ),
    ("NaN", '{"type": "send", "content": "x", "max_tokens": NaN}', "finite"),
    ("Infinity", '{"type": "send", "content": "x", "max_tokens": -Infinity}', "finite"),
    ("model a number", '{"type": "send", "content": "x", "model": 5}', "'model'"),
    ("model too long", json.dumps({"type": "send", "content": "x", "model": "m" * 101}), "'model'"),
    ("model with NUL", '{"type": "send", "content": "x", "model": "de\\u0000mo"}', "NUL"),
    ("model an object", '{"type": "send", "content": "x", "model": {"id": "demo"}}', "'model'"),
    ("client_id path", '{"type": "send", "content": "x", "client_id": "../../x"}', "client_id"),
    (
        "client_id too long",
        json.dumps({"type": "send", "content": "x", "client_id": "a" * 65}),
        "client_id",
    ),
    ("client_id empty", '{"type": "send", "content": "x", "client_id": ""}', "client_id"),
    ("retry without id", '{"type": "retry"}', "message_id"),
    ("retry id text", '{"type": "retry", "message_id": "1"}', "whole number"),
    ("retry id zero", '{"type": "retry", "message_id": 0}', "between"),
    ("retry id negative", '{"type": "retry", "message_id": -1}', "between"),
    ("retry id too big", '{"type": "retry", "message_id": 9223372036854775808}', "between"),
    ("duplicate keys", '{"type": "stop", "type": "send", "content": "x"}', "twice"),
    ("deep nesting", '{"type": "send", "content": ' + DEEP + "}", "JSON"),
    ("stop with extras", '{"type": "stop", "force": true}', "force"),
]


@pytest.fixture
def conversation(alice: Any) -> Conversation:
    return Conversation.objects.create(owner=alice, model="demo")


async def _nothing_happened(server: SSEServer) -> None:
    assert await Message.objects.acount() == 0
    assert await LedgerEntry.objects.filter(kind="hold").acount() == 0
    assert await LlmUsage.objects.acount() == 0
    assert server.requests == []


async def _still_works(tab: WebsocketCommunicator) -> None:
    await send(tab, type="send", content="Still there?")
    assert (await until_end(tab))[-1]["type"] == "message_stop"
    await runner.wait_for_replies()


@pytest.mark.parametrize(
    ("raw", "needle"), [c[1:] for c in HOSTILE_FRAMES], ids=[c[0] for c in HOSTILE_FRAMES]
)
async def test_a_hostile_frame_gets_invalid_request_and_changes_nothing(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer, raw: Any, needle: str
) -> None:
    tab = await connect(alice, conversation)
    key = "bytes" if isinstance(raw, bytes) else "text"
    await tab.send_input({"type": "websocket.receive", key: raw})  # empty frames too
    error = await receive(tab)
    assert (error["type"], error["code"], error["retryable"]) == ("error", "invalid_request", False)
    assert needle in error["message"] and len(error["message"]) < 300
    await _nothing_happened(anthropic_server)
    await _still_works(tab)
    await tab.disconnect()


def test_the_table_covers_at_least_forty_cases() -> None:
    assert len(HOSTILE_FRAMES) + len(HANDSHAKES) >= 40


async def test_a_retry_of_another_persons_message_answers_like_a_missing_one(
    alice: Any, bob: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    theirs = await Conversation.objects.acreate(owner=bob, model="demo")
    foreign = await Message.objects.acreate(
        conversation=theirs, role="assistant", content="secret", status="error"
    )
    tab = await connect(alice, conversation)
    answers = []
    for message_id in (foreign.pk, foreign.pk + 1000):
        await send(tab, type="retry", message_id=message_id)
        answers.append(await receive(tab))
    assert answers[0] == answers[1]
    assert answers[0]["code"] == "not_found" and "secret" not in json.dumps(answers[0])
    assert await Message.objects.acount() == 1 and anthropic_server.requests == []
    await tab.disconnect()


# --- handshakes through the real ASGI application -------------------------------------------


def _cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.mark.parametrize(
    ("origin", "who", "path", "expected"),
    [c[1:] for c in HANDSHAKES],
    ids=[c[0] for c in HANDSHAKES],
)
async def test_handshakes_are_same_origin_signed_in_and_owner_only(
    alice: Any,
    bob: Any,
    conversation: Conversation,
    origin: bytes | None,
    who: str | None,
    path: str,
    expected: int | None,
) -> None:
    headers = [(b"host", HOST)] + ([(b"origin", origin)] if origin is not None else [])
    if who is not None:
        cookie = await database_sync_to_async(_cookie)(alice if who == "owner" else bob)
        headers.append((b"cookie", cookie))
    target = conversation.pk if path == "own" else conversation.pk + 1000
    tab = WebsocketCommunicator(application, f"/ws/chat/{target}/", headers=headers)
    connected, _ = await tab.connect()
    if expected == ORIGIN_REFUSED:
        # Refused before the app: the server turns this into an HTTP 403 to the upgrade.
        assert not connected
        # The refusal opened no receive on the channel layer (on Redis, cancelling one could
        # hang: chatsite/origins.py). The in-memory layer shows every channel received on.
        layer = get_channel_layer()
        if isinstance(layer, InMemoryChannelLayer):
            assert layer.channels == {}
        return
    assert connected
    if expected is None:
        await tab.disconnect()
        return
    # The app's refusals are accepted, then closed with its 4000-4999 code, which the page reads.
    assert await tab.receive_output(timeout=3) == {"type": "websocket.close", "code": expected}


# --- fuzzing ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
frame_like = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["send", "stop", "retry", "x"])},
        optional={
            "content": json_values,
            "model": json_values,
            "max_tokens": json_values,
            "client_id": json_values,
            "message_id": json_values,
        },
    ),
)


@given(value=frame_like)
def test_parsing_any_json_value_gives_a_frame_or_a_frame_error(value: Any) -> None:
    text = json.dumps(value, allow_nan=True)
    try:
        parsed = frames.parse_client_frame(text, None)
    except frames.FrameError as exc:
        assert str(exc)
    else:
        assert isinstance(parsed, frames.SendFrame | frames.StopFrame | frames.RetryFrame)


@given(text=st.text(max_size=200))
def test_parsing_any_text_gives_a_frame_or_a_frame_error(text: str) -> None:
    with contextlib.suppress(frames.FrameError):
        frames.parse_client_frame(text, None)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=frame_like)
async def test_fuzzed_invalid_frames_never_break_the_socket_or_leave_a_trace(
    alice: Any, conversation: Conversation, anthropic_server: SSEServer, value: Any
) -> None:
    text = json.dumps(value, allow_nan=True)
    try:
        frames.parse_client_frame(text, None)
        assume(False)  # valid frames are the other tests' business
    except frames.FrameError:
        pass
    tab = await connect(alice, conversation)
    await tab.send_to(text_data=text)
    output = await tab.receive_output(timeout=3)
    assert output["type"] == "websocket.send", output  # an answer, never a close (1011)
    error = json.loads(output["text"])
    assert error["code"] == "invalid_request" and "Traceback" not in error["message"]
    await _nothing_happened(anthropic_server)
    await send(tab, type="stop")  # the socket still takes frames
    assert await tab.receive_nothing(timeout=0.05)
    await tab.disconnect()


async def test_another_persons_stop_and_send_never_touch_this_conversation(
    alice: Any, bob: Any, conversation: Conversation, anthropic_server: SSEServer
) -> None:
    """Every frame type from a second person acts on their own conversation only (their socket
    cannot even open on someone else's: see the handshake table)."""
    from tests.fakes.anthropic import text_reply

    await Conversation.objects.filter(pk=conversation.pk).aupdate(model="claude-sonnet-5-5")
    anthropic_server.enqueue(text_reply(["a "] * 30, delay=0.01))
    mine = await connect(alice, conversation)
    theirs = await connect(bob, await Conversation.objects.acreate(owner=bob, model="demo"))
    await send(mine, type="send", content="Alice asks")
    await send(theirs, type="stop")
    await send(theirs, type="retry", message_id=1)
    refused = await receive(theirs)
    assert refused["code"] == "not_found"
    end = (await until_end(mine))[-1]
    assert end["type"] == "message_stop" and end["stop_reason"] == "end_turn"
    assert anthropic_server.requests[0].disconnected_at is None
    await mine.disconnect()
    await theirs.disconnect()
    await runner.wait_for_replies()


_FRAME_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),  # lone surrogates included
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(frame=st.dictionaries(st.text(), _FRAME_VALUES, max_size=6))
def test_a_frame_is_written_as_the_json_module_writes_it(frame: dict[str, object]) -> None:
    """orjson writes frames, the json module what orjson refuses (a lone surrogate, an integer
    past 64 bits): the text means what the json module's would, can always be sent as UTF-8,
    and is the same text when it could be sent as the json module writes it and no float is in
    it (orjson spells some shorter: 1e-7, not 1e-07)."""
    theirs = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
    ours = frames.dump(frame)
    assert repr(json.loads(ours)) == repr(json.loads(theirs))
    ours.encode("utf-8")
    if not _has_float(frame) and _sendable(theirs):
        assert ours == theirs


def _sendable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False
