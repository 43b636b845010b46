"""Stored messages' Markdown: a table column's alignment survives as a class (the CSP refuses
style attributes), and nothing else gets a class or a style."""

from __future__ import annotations

from html.parser import HTMLParser

from chat.rendering import render_markdown


def test_a_table_keeps_its_alignment_as_classes() -> None:
    html = render_markdown("| a | b | c | d |\n|:--|:-:|--:|---|\n| 1 | 2 | 3 | 4 |")
    assert '<th class="align-left">a</th>' in html
    assert '<th class="align-center">b</th>' in html
    assert '<td class="align-right">3</td>' in html
    assert "<td>4</td>" in html and "style" not in html


class _Attributes(HTMLParser):
    """Every (tag, attribute, value) of the real elements (not of text that looks like them)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [(tag, name, value) for name, value in attrs]


def test_no_other_class_or_style_gets_through() -> None:
    hostile = (
        '<td class="evil" style="color:red">x</td>\n\n| a |\n|--:|\n| <span class=x>1</span> |'
    )
    parser = _Attributes()
    parser.feed(render_markdown(hostile))
    assert {name for _, name, _ in parser.found} <= {"class", "tabindex"}
    assert [value for _, name, value in parser.found if name == "class"] == ["align-right"] * 2
