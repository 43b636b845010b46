"""Markdown to safe HTML for stored messages: raw HTML off, then an allow-list sanitizer.

The browser renders streaming text with the same rules (markdown-it with html off, DOMPurify
with the same allow-list) in chat/static/chat/render.js.
"""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

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


def render_markdown(text: str) -> SafeString:
    html = _md.render(text)
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values=SCROLLING,
    )
    return mark_safe(clean)
