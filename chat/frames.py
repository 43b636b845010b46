"""The websocket contract (docs/protocol.md): client frames parsed strictly, every server frame
built here, the close codes and the statuses that offer Retry defined here (the page gets them
from `client_contract`)."""

from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson
from django.conf import settings

_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_FRAME_CHARS_SLACK = 4096
MAX_TOKENS_CEILING = 1_000_000


class Close(enum.IntEnum):
    """Why the server closes a socket (websocket close codes), as the page acts on them."""

    # The page reconnects at once and is sent a fresh snapshot (a gap, a socket too slow).
    RESYNC = 4000
    # Signed out (or the account can no longer sign in): the page goes to the log-in page.
    SIGNED_OUT = 4401
    NOT_FOUND = 4404
    TOO_MANY_SOCKETS = 4429
    # The socket sent frames faster than any page does (a flood): the page waits, then
    # reconnects.
    TOO_MANY_FRAMES = 4420


# A reply that ended so can be tried again (`retry`); the page offers Retry on it.
RETRY_STATUSES = ("error", "stopped", "interrupted")


def client_contract() -> dict[str, Any]:
    """What the page's script needs of the contract (rendered with `json_script`)."""
    return {
        "close": {code.name.lower(): code.value for code in Close},
        "retry_statuses": list(RETRY_STATUSES),
    }


class FrameError(ValueError):
    """A frame the server refuses; the text names the problem for the person. `client_id` is
    the refused send's own, when it had a valid one (the page gives its text back)."""

    def __init__(self, message: str, *, client_id: str | None = None) -> None:
        super().__init__(message)
        self.client_id = client_id


# A send without `parent_id` follows the end of the conversation's current branch.
AT_CURRENT_LEAF = -1


@dataclass(frozen=True, slots=True)
class SendFrame:
    content: str
    model: str | None = None
    max_tokens: int | None = None
    client_id: str | None = None
    # The message the new one follows (None: none, a first message), by default the end of
    # the current branch.
    parent_id: int | None = AT_CURRENT_LEAF


@dataclass(frozen=True, slots=True)
class EditFrame:
    """A new version of the person's message `message_id` (its sibling), and a reply to it."""

    message_id: int
    content: str
    client_id: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class RegenerateFrame:
    """A new reply beside the reply `message_id` (its sibling; the old one is kept)."""

    message_id: int
    model: str | None = None


@dataclass(frozen=True, slots=True)
class SelectFrame:
    """Make the branch through `message_id` the conversation's current one."""

    message_id: int


@dataclass(frozen=True, slots=True)
class StopFrame:
    pass


@dataclass(frozen=True, slots=True)
class RetryFrame:
    message_id: int


ClientFrame: TypeAlias = (
    SendFrame | EditFrame | RegenerateFrame | SelectFrame | StopFrame | RetryFrame
)

_FIELDS: dict[str, frozenset[str]] = {
    "send": frozenset({"type", "content", "model", "max_tokens", "client_id", "parent_id"}),
    "edit": frozenset({"type", "message_id", "content", "client_id", "model"}),
    "regenerate": frozenset({"type", "message_id", "model"}),
    "select": frozenset({"type", "message_id"}),
    "stop": frozenset({"type"}),
    "retry": frozenset({"type", "message_id"}),
}
_MAX_ID = 2**63 - 1


def clean_text(text: str) -> str:
    """Text safe to store and send: lone surrogates and NUL become U+FFFD (neither is storable)."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def _check_text(value: str, name: str) -> None:
    if "\x00" in value:
        raise FrameError(f"'{name}' must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FrameError(f"'{name}' is not valid Unicode text.") from None


def _optional_int(data: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameError(f"'{name}' must be a whole number.")
    if not low <= value <= high:
        raise FrameError(f"'{name}' must be between {low} and {high}.")
    return value


def _optional_str(data: dict[str, Any], name: str, max_len: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise FrameError(f"'{name}' must be text of 1 to {max_len} characters.")
    _check_text(value, name)
    return value


def _no_constant(name: str) -> Any:
    raise FrameError(f"Numbers must be finite ({name} is not).")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise FrameError(f"Numbers must be finite ({literal[:20]} is not).")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise FrameError("A field appears twice in the frame.")
    return data


def parse_client_frame(text: str | None, binary: bytes | None) -> ClientFrame:
    """Validate one frame before anything else happens; raise `FrameError` naming the problem."""
    if binary is not None or text is None:
        raise FrameError("Binary frames are not accepted; send JSON text.")
    if not text.strip():
        raise FrameError("The frame is empty.")
    if len(text) > settings.MESSAGE_MAX_CHARS * 6 + _MAX_FRAME_CHARS_SLACK:
        raise FrameError("The frame is too large.")
    try:
        data = json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            object_pairs_hook=_no_duplicates,
        )
    except FrameError:
        raise
    except (ValueError, RecursionError):
        raise FrameError("The frame is not valid JSON.") from None
    if not isinstance(data, dict):
        raise FrameError("The frame must be a JSON object.")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise FrameError(
            "Unknown frame type; expected send, edit, regenerate, select, stop or retry."
        )
    if kind in ("send", "edit"):
        try:
            return _send_frame(data) if kind == "send" else _edit_frame(data)
        except FrameError as exc:
            # Refused for its content or another field: the page matches it by its client_id.
            raise FrameError(str(exc), client_id=_valid_client_id(data)) from None
    _no_unknown_fields(data, kind)
    if kind == "stop":
        return StopFrame()
    message_id = _message_id(data)
    if kind == "regenerate":
        return RegenerateFrame(message_id=message_id, model=_optional_str(data, "model", 100))
    if kind == "select":
        return SelectFrame(message_id=message_id)
    return RetryFrame(message_id=message_id)


def _message_id(data: dict[str, Any]) -> int:
    message_id = _optional_int(data, "message_id", 1, _MAX_ID)
    if message_id is None:
        raise FrameError("'message_id' is required.")
    return message_id


def _no_unknown_fields(data: dict[str, Any], kind: str) -> None:
    unknown = set(data) - _FIELDS[kind]
    if unknown:
        # Named back to the person as readable text, never as the client sent them.
        named = ", ".join(sorted(clean_text(name)[:40] for name in unknown))[:100]
        raise FrameError(f"Unknown field(s) for '{kind}': {named}.")


def _valid_client_id(data: dict[str, Any]) -> str | None:
    value = data.get("client_id")
    return value if isinstance(value, str) and _CLIENT_ID.fullmatch(value) else None


def _send_frame(data: dict[str, Any]) -> SendFrame:
    _no_unknown_fields(data, "send")
    content, client_id = _content(data), _client_id(data)
    # Absent: after the end of the current branch; null: a first message (a new root).
    parent_id: int | None = AT_CURRENT_LEAF
    if "parent_id" in data:
        parent_id = _optional_int(data, "parent_id", 1, _MAX_ID)
    return SendFrame(
        content=content,
        model=_optional_str(data, "model", 100),
        max_tokens=_optional_int(data, "max_tokens", 1, MAX_TOKENS_CEILING),
        client_id=client_id,
        parent_id=parent_id,
    )


def _edit_frame(data: dict[str, Any]) -> EditFrame:
    """An edit obeys a send's rules for its text and client_id."""
    _no_unknown_fields(data, "edit")
    return EditFrame(
        message_id=_message_id(data),
        content=_content(data),
        client_id=_client_id(data),
        model=_optional_str(data, "model", 100),
    )


def _content(data: dict[str, Any]) -> str:
    content = data.get("content")
    if not isinstance(content, str) or not content.strip():
        raise FrameError("'content' must be non-empty text.")
    if len(content) > settings.MESSAGE_MAX_CHARS:
        raise FrameError(
            f"The message is too long (at most {settings.MESSAGE_MAX_CHARS} characters)."
        )
    _check_text(content, "content")
    return content


def _client_id(data: dict[str, Any]) -> str | None:
    client_id = _optional_str(data, "client_id", 64)
    if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
        raise FrameError("'client_id' may hold only letters, digits, '-' and '_'.")
    return client_id


def dump(frame: dict[str, Any]) -> str:
    """A frame's JSON text, once for every frame of every reply: written by orjson for the CPU
    per relayed event (docs/benchmarks.md). It writes what
    `json.dumps(frame, ensure_ascii=False, separators=(",", ":"))` does, but for floats' shortest
    spelling (`1e-7`, not `1e-07`) and NaN (`null`, valid JSON). What it refuses (a lone
    surrogate, an integer past 64 bits, a key that is not a string) the json module writes, with
    every non-ASCII character escaped where the text could not be sent otherwise (a lone
    surrogate cannot be encoded as UTF-8, and a socket's server would fail to send it)."""
    try:
        return orjson.dumps(frame).decode()
    except TypeError:  # orjson.JSONEncodeError
        text = json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(frame, ensure_ascii=True, separators=(",", ":"))
        return text


def error(
    *,
    code: str,
    message: str,
    retryable: bool,
    message_id: int | None = None,
    client_id: str | None = None,
    partial_content: str | None = None,
    retry_after: float | None = None,
    charge: dict[str, Any] | None = None,
) -> str:
    """`error`: a reply's ending (`message_id`) or a refusal (of the send `client_id`, if any).
    A reply that wrote text before it failed was billed: `charge` adds what `message_stop`
    says of that (`usage`, `provider`, `byok`, `coins_charged`, `balance`)."""
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    frame["retryable"] = retryable
    if retry_after is not None:
        frame["retry_after"] = retry_after
    if message_id is not None:
        frame["message_id"] = message_id
    if client_id is not None:
        frame["client_id"] = client_id
    if partial_content:
        frame["partial_content"] = partial_content
    if charge is not None:
        frame.update(charge)
    return dump(frame)


# --- server frames ------------------------------------------------------------------------------


def user_message(
    *, message_id: int, content: str, client_id: str, parent_id: int | None = None
) -> str:
    """`user_message`: a person's message, to every tab (the sender's matches its client_id),
    after `parent_id` (None: a first message)."""
    return dump(
        {
            "type": "user_message",
            "message_id": message_id,
            "content": content,
            "client_id": client_id or None,
            "parent_id": parent_id,
        }
    )


def message_start(
    *,
    message_id: int,
    conversation_id: int,
    model: str,
    provider: str,
    byok: bool,
    parent_id: int | None = None,
) -> str:
    """A reply began (or began again, for a retry) after the person's message `parent_id`."""
    return dump(
        {
            "type": "message_start",
            "message_id": message_id,
            "conversation_id": conversation_id,
            "model": model,
            "provider": provider,
            "byok": byok,
            "parent_id": parent_id,
        }
    )


def branch(*, conversation_id: int, path: list[int]) -> str:
    """The conversation's current branch, its message ids from the root: every tab shows it."""
    return dump({"type": "branch", "conversation_id": conversation_id, "path": path})


def deltas(
    message_id: int, thinking: tuple[int, str] | None, text: tuple[int, str] | None
) -> list[str]:
    """`thinking_delta` then `text_delta`, for what was taken of each (offset, text)."""
    out = []
    for kind, taken in (("thinking_delta", thinking), ("text_delta", text)):
        if taken is not None:
            offset, piece = taken
            out.append(
                dump({"type": kind, "message_id": message_id, "text": piece, "offset": offset})
            )
    return out


def message_snapshot(
    *,
    message_id: int,
    content: str,
    thinking: str,
    status: str,
    tools: list[dict[str, Any]] | None = None,
) -> str:
    """`tools`: the reply's tool calls so far, each as its `tool_call` frame's fields and, once
    it ran, its `result` (`is_error`, `content`, `duration_ms`)."""
    return dump(
        {
            "type": "message_snapshot",
            "message_id": message_id,
            "content": content,
            "thinking": thinking,
            "status": status,
            "tools": tools or [],
        }
    )


def tool_call(*, message_id: int, call: dict[str, Any]) -> str:
    """A call the model asked for, its input complete; `offset`: the reply's text length then."""
    return dump(
        {
            "type": "tool_call",
            "message_id": message_id,
            "call_id": call["call_id"],
            "name": call["name"],
            "input": call["input"],
            "offset": call["offset"],
        }
    )


def tool_result(*, message_id: int, call_id: str, result: dict[str, Any]) -> str:
    return dump(
        {
            "type": "tool_result",
            "message_id": message_id,
            "call_id": call_id,
            "is_error": result["is_error"],
            "content": result["content"],
            "duration_ms": result["duration_ms"],
        }
    )


def message_stop(
    *,
    message_id: int,
    stop_reason: str,
    input_tokens: int,
    output_tokens: int,
    provider: str,
    byok: bool,
    coins_charged: int,
    balance: int | None,
) -> str:
    return dump(
        {
            "type": "message_stop",
            "message_id": message_id,
            "stop_reason": stop_reason,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            "provider": provider,
            "byok": byok,
            "coins_charged": coins_charged,
            "balance": balance,
        }
    )


def retrying(
    *, message_id: int, attempt: int, max_attempts: int, wait: float, code: str, message: str
) -> str:
    return dump(
        {
            "type": "retrying",
            "message_id": message_id,
            "attempt": attempt,
            "max_attempts": max_attempts,
            "wait": round(wait, 2),
            "code": code,
            "message": message,
        }
    )


def conversation_title(
    *, conversation_id: int, title: str, charge: dict[str, Any] | None = None
) -> str:
    """The conversation was named. `charge` adds what the title call cost, as `message_stop`
    says it (`message_id` of the reply it followed, `model`, `usage`, `provider`, `byok`,
    `coins_charged`, `balance`): the page shows it under that reply."""
    frame: dict[str, Any] = {
        "type": "conversation_title",
        "conversation_id": conversation_id,
        "title": title,
    }
    if charge is not None:
        frame.update(charge)
    return dump(frame)


def conversation_deleted(*, conversation_id: int) -> str:
    """The person deleted the conversation: a tab showing it leaves, the others drop it from
    their list."""
    return dump({"type": "conversation_deleted", "conversation_id": conversation_id})


def conversation_tools(*, conversation_id: int, enabled: bool) -> str:
    """The person switched tools on or off in the conversation: every tab's switch follows."""
    return dump(
        {"type": "conversation_tools", "conversation_id": conversation_id, "enabled": enabled}
    )


def balance(*, balance: int) -> str:
    """The person's balance changed (a reply or a title was billed): for every tab of theirs,
    whatever conversation it shows, so each header follows every charge."""
    return dump({"type": "balance", "balance": balance})


def snapshot_of(message: Any) -> str:
    """`message_snapshot` of a saved reply (a `Message` row)."""
    return message_snapshot(
        message_id=message.pk,
        content=message.content,
        thinking=message.thinking,
        status=message.status,
        tools=message.tools,
    )


def user_message_of(message: Any) -> str:
    """`user_message` of a saved person's message (a `Message` row)."""
    return user_message(
        message_id=message.pk,
        content=message.content,
        client_id=message.client_id,
        parent_id=message.parent_id,
    )
