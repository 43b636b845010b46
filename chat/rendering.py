"""Markdown to safe HTML for stored messages: raw HTML off, then an allow-list sanitizer.

The browser renders streaming text with the same rules (markdown-it with html off, DOMPurify
with the same allow-list) in chat/static/chat/render.js.
"""

from __future__ import annotations

import re

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "code": {"class"}}
URL_SCHEMES = {"http", "https", "mailto"}
# Code blocks and tables scroll sideways inside a message: a keyboard reaches them (Tab, then
# the arrow keys scroll), as WCAG asks of a scrolling region.
SCROLLING = {"pre": {"tabindex": "0"}, "table": {"tabindex": "0"}}

_md = (
    MarkdownIt("commonmark", {"html": False, "linkify": False})
    .enable("table")
    .enable("strikethrough")
)


# A table column's alignment: markdown-it writes it as a style attribute, which the site's
# CSP would refuse; it becomes one of these classes (chat.css), as render.js does too.
ALIGNED = {"th": {"align-left", "align-center", "align-right"}}
ALIGNED["td"] = ALIGNED["th"]
_ALIGNMENT = re.compile(r"text-align:\s*(left|center|right)")


def _align_by_class(state: StateCore) -> None:
    for token in state.tokens:
        if token.type in ("th_open", "td_open") and "style" in token.attrs:
            found = _ALIGNMENT.search(str(token.attrs.pop("style")))
            if found:
                token.attrs["class"] = f"align-{found.group(1)}"


_md.core.ruler.push("align_by_class", _align_by_class)


def render_markdown(text: str) -> SafeString:
    html = _md.render(text)
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values=SCROLLING,
        allowed_classes=ALIGNED,
    )
    return mark_safe(clean)
