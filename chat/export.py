"""A conversation as a file: its current branch as Markdown, its whole tree as JSON (with each
reply's model, times, tokens and coins)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.db.models import Sum
from django.utils import timezone
from django.utils.text import slugify

from billing.models import LlmUsage
from chat import tree
from chat.models import Conversation, Message
from chat.templatetags.chat_tags import model_name_filter, tool_groups


def filename(conversation: Conversation, extension: str) -> str:
    return f"{slugify(conversation.title)[:60] or 'conversation'}-{conversation.pk}.{extension}"


def _messages(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.order_by("id"))


def _current(messages: list[Message], conversation: Conversation) -> list[int]:
    parents = {m.pk: m.parent_id for m in messages}
    leaf = conversation.current_leaf_id
    return tree.path_to(parents, leaf if leaf in parents else max(parents, default=None))


def _coins(message_ids: list[int]) -> dict[int, int]:
    """The coins every provider call of each reply charged (its retries included)."""
    rows = (
        LlmUsage.objects.filter(message_id__in=message_ids, purpose=LlmUsage.Purpose.REPLY)
        .values("message_id")
        .annotate(coins=Sum("coins_charged"))
    )
    return {row["message_id"]: int(row["coins"] or 0) for row in rows}


def _stamp(moment: dt.datetime) -> str:
    return timezone.localtime(moment, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def as_markdown(conversation: Conversation) -> str:
    messages = _messages(conversation)
    by_id = {m.pk: m for m in messages}
    branch = [by_id[pk] for pk in _current(messages, conversation)]
    coins = _coins([m.pk for m in branch if m.role == Message.Role.ASSISTANT])
    out = [
        f"# {conversation.title}",
        "",
        f"*Exported {_stamp(timezone.now())}: the current branch, {len(branch)} messages.*",
    ]
    for message in branch:
        out += ["", "---", ""]
        if message.role == Message.Role.USER:
            out += ["## You", "", message.content]
            continue
        out += [f"## {model_name_filter(message.model)}", ""]
        if message.thinking:
            out += ["> **Thinking**", ">"] + [f"> {line}" for line in message.thinking.splitlines()]
            out += [""]
        out.append(_with_calls(message))
        ending = {"stopped": "Stopped.", "interrupted": "Interrupted."}.get(message.status, "")
        if message.status == Message.Status.ERROR:
            ending = f"Failed: {message.error_message}"
        facts = [message.model, _stamp(message.created_at)]
        if message.input_tokens is not None:
            facts.append(f"{message.input_tokens} tokens in, {message.output_tokens} out")
        facts.append("own key" if message.byok else f"{coins.get(message.pk, 0)} coins")
        out += ["", f"*{' · '.join(facts)}*" + (f" {ending}" if ending else "")]
    return "\n".join(out).rstrip() + "\n"


def _with_calls(message: Message) -> str:
    """A reply's text with its tool calls where it asked for them, each as a quote: the tool,
    its input and what it gave."""
    if not message.tools:
        return message.content
    text, start, out = message.content, 0, []
    for offset, calls in tool_groups(message.tools):
        offset = min(max(offset, start), len(text))
        out.append(text[start:offset])
        for call in calls:
            result = call.get("result") or {}
            gave = "Error" if result.get("is_error") else "Result"
            asked = json.dumps(call.get("input") or {}, ensure_ascii=False)
            lines = [
                f"**Tool `{call['name']}`** `{asked}`",
                f"{gave}: {result.get('content', 'none (it did not finish)')}",
            ]
            quoted = "\n".join(f"> {line}" for part in lines for line in part.splitlines())
            out.append(f"\n\n{quoted}\n\n")
        start = offset
    out.append(text[start:])
    return "".join(out)


def as_json(conversation: Conversation) -> dict[str, Any]:
    messages = _messages(conversation)
    coins = _coins([m.pk for m in messages if m.role == Message.Role.ASSISTANT])
    return {
        "conversation": {
            "id": conversation.pk,
            "title": conversation.title,
            "model": conversation.model,
            "created_at": conversation.created_at.isoformat(),
            "updated_at": conversation.updated_at.isoformat(),
            "current_branch": _current(messages, conversation),
        },
        "messages": [_message(m, coins) for m in messages],
        "exported_at": timezone.now().isoformat(),
    }


def _message(message: Message, coins: dict[int, int]) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": message.pk,
        "parent_id": message.parent_id,
        "role": message.role,
        "content": message.content,
        "created_at": message.created_at.isoformat(),
    }
    if message.role == Message.Role.ASSISTANT:
        shown |= {
            "thinking": message.thinking,
            "status": message.status,
            "model": message.model,
            "provider": message.provider,
            "own_key": message.byok,
            "input_tokens": message.input_tokens,
            "output_tokens": message.output_tokens,
            "coins": 0 if message.byok else coins.get(message.pk, 0),
            "stop_reason": message.stop_reason,
            "error_code": message.error_code,
            "error_message": message.error_message,
            "tools": message.tools or [],
        }
    return shown
