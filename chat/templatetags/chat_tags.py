from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from chat.rendering import render_markdown
from providers import registry
from providers.catalogue import find_model

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    return render_markdown(text or "")


@register.filter(name="provider_label")
def provider_label_filter(name: str) -> str:
    """A provider's name for people (providers/registry.py)."""
    return registry.label(name)


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
    model = find_model(message.model)
    name = model.display_name if model else message.model
    tokens = f"{message.input_tokens or 0:,} tokens in, {message.output_tokens or 0:,} out"
    paid = (
        f"paid with your own {registry.label(message.provider)} key"
        if message.byok
        else f"{coins} coin{'' if coins == 1 else 's'}"
    )
    return f"{name} · {tokens} · {paid}"
