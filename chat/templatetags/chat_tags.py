from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.safestring import SafeString

from chat import tool_loop
from chat.rendering import render_markdown
from providers import registry
from providers.catalogue import find_model

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    return render_markdown(text or "")


@register.filter(name="reply_parts")
def reply_parts_filter(message: Any) -> list[dict[str, Any]]:
    """A reply's text cut where it called tools: its parts in order, each `{"text": html}` or
    `{"calls": [...]}` (the page's script cuts it the same way, `layoutOf` in conversation.js)."""
    parts: list[dict[str, Any]] = []
    text, start = message.content or "", 0
    for offset, calls in tool_groups(message.tools or []):
        offset = min(max(offset, start), len(text))
        if text[start:offset]:
            parts.append({"text": render_markdown(text[start:offset])})
        parts.append({"calls": calls})
        start = offset
    if text[start:]:
        parts.append({"text": render_markdown(text[start:])})
    return parts


def tool_groups(calls: list[dict[str, Any]]) -> list[tuple[int, list[dict[str, Any]]]]:
    """A reply's calls grouped by where in its text they were asked for, in order."""
    groups: list[tuple[int, list[dict[str, Any]]]] = []
    for call in calls:
        offset = int(call.get("offset") or 0)
        if groups and groups[-1][0] == offset:
            groups[-1][1].append(call)
        else:
            groups.append((offset, [call]))
    return groups


@register.filter(name="json_attr")
def json_attr_filter(value: Any) -> str:
    """JSON text for a data attribute (escaped there by the template, as any text)."""
    return json.dumps(value, ensure_ascii=False)


@register.simple_tag
def tool_limit_note() -> str:
    return tool_loop.limit_ending()


@register.filter(name="tool_state")
def tool_state_filter(call: dict[str, Any]) -> str:
    result = call.get("result")
    return "running" if result is None else "error" if result.get("is_error") else "done"


@register.filter(name="tool_status")
def tool_status_filter(call: dict[str, Any]) -> str:
    """ "running…", "failed · 1.2 s" or "3 ms": what the page writes live (`toolStatus`)."""
    result = call.get("result")
    if result is None:
        return "running…"
    ms = result.get("duration_ms") or 0
    took = f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
    return f"failed · {took}" if result.get("is_error") else took


@register.filter(name="tool_input")
def tool_input_filter(call: dict[str, Any]) -> str:
    return json.dumps(call.get("input") or {}, indent=2, ensure_ascii=False)


@register.filter(name="provider_label")
def provider_label_filter(name: str) -> str:
    """A provider's name for people (providers/registry.py)."""
    return registry.label(name)


@register.filter(name="model_name")
def model_name_filter(model_id: str) -> str:
    """A model's name for people (its id if the catalogue no longer knows it)."""
    model = find_model(model_id or "")
    return model.display_name if model else (model_id or "Assistant")


@register.simple_tag
def reply_cost(message: Any) -> str:
    """A finished reply's cost line: model, tokens in and out, coins or the person's own key.
    The page's script writes the same line from `message_stop` (`costLine` in conversation.js).
    Empty for a reply with no recorded call."""
    if not hasattr(message, "coins_charged"):
        return ""  # not a reply whose cost its tabs were told (chat/views.py)
    coins = message.coins_charged
    if coins is None and not message.byok:
        return ""
    return cost_line(
        model_id=message.model,
        input_tokens=message.input_tokens or 0,
        output_tokens=message.output_tokens or 0,
        provider=message.provider,
        byok=message.byok,
        coins=coins or 0,
    )


@register.simple_tag
def title_cost(message: Any) -> str:
    """What naming the conversation after this reply cost (its `title_usage`, an LlmUsage
    row, set by chat/views.py), as the page writes it from `conversation_title`: "Title · "
    and a cost line. Empty when no title call followed this reply."""
    usage = getattr(message, "title_usage", None)
    if usage is None:
        return ""
    return "Title · " + cost_line(
        model_id=usage.model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        provider=usage.provider,
        byok=usage.byok,
        coins=usage.coins_charged,
    )


def cost_line(
    *,
    model_id: str,
    input_tokens: int,
    output_tokens: int,
    provider: str,
    byok: bool,
    coins: int,
) -> str:
    """ "Model · N tokens in, M out · K coins" (or "paid with your own X key"): the words the
    page's `costLine` writes live."""
    model = find_model(model_id)
    name = model.display_name if model else model_id
    tokens = f"{input_tokens:,} tokens in, {output_tokens:,} out"
    paid = (
        f"paid with your own {registry.label(provider)} key"
        if byok
        else f"{coins} coin{'' if coins == 1 else 's'}"
    )
    return f"{name} · {tokens} · {paid}"
