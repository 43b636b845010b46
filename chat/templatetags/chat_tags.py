from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from chat.rendering import render_markdown
from providers import registry

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    return render_markdown(text or "")


@register.filter(name="provider_label")
def provider_label_filter(name: str) -> str:
    """A provider's name for people (providers/registry.py)."""
    return registry.label(name)
