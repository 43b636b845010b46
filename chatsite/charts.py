"""Bar charts drawn on the server as SVG: no script, no library, nothing from another site (the
CSP allows only this one). Each chart is an image with a title and a description for screen
readers, and each bar has its own title (a tooltip, and read out); the page puts the same
figures in a table beside it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH = 640
HEIGHT = 180
# Room for the axis labels under the bars and the scale at the left.
BOTTOM = 22
LEFT = 44
RIGHT = 24
TOP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    label: str  # under the bar (may be blank to thin out a crowded axis)
    value: int
    tooltip: str  # the bar's own title: what it stands for, in words


def day_bars(
    days: list[tuple[dt.date, int]], *, units: tuple[str, str], every: int, last: bool = False
) -> list[Bar]:
    """A bar per day, labelled every `every` days (and the last one too if `last`), each with
    its date and value in words ("Monday December 7: 13 coins"; `units`: singular, plural)."""
    return [
        Bar(
            label=f"{day:%b %-d}"
            if index % every == 0 or (last and index == len(days) - 1)
            else "",
            value=value,
            tooltip=f"{day:%A %B %-d}: {value:,} {units[0] if value == 1 else units[1]}",
        )
        for index, (day, value) in enumerate(days)
    ]


def bar_chart(bars: list[Bar], *, title: str, description: str, chart_id: str) -> SafeString:
    """An accessible SVG bar chart of `bars` (values at or above zero), scaled to the largest."""
    top = max((bar.value for bar in bars), default=0) or 1
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT - RIGHT) / max(len(bars), 1)
    width = max(1.0, slot * 0.7)
    rects = []
    for index, bar in enumerate(bars):
        height = plot_height * max(bar.value, 0) / top
        x = LEFT + index * slot + (slot - width) / 2
        y = TOP + plot_height - height
        rects.append(
            (
                f"{x:.1f}",
                f"{y:.1f}",
                f"{width:.1f}",
                f"{height:.1f}",
                bar.tooltip,
                f"{x + width / 2:.1f}",
                HEIGHT - 6,
                bar.label,
            )
        )
    body = format_html_join(
        "",
        '<g><rect class="chart-bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title>'
        '</rect><text class="chart-label" x="{}" y="{}" text-anchor="middle">{}</text></g>',
        rects,
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title {}-desc" '
        'preserveAspectRatio="xMidYMid meet">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>'
        '<line class="chart-axis" x1="{}" y1="{}" x2="{}" y2="{}"></line>'
        '<text class="chart-label" x="{}" y="{}" text-anchor="end">{}</text>'
        '<text class="chart-label" x="{}" y="{}" text-anchor="end">0</text>'
        "{}</svg>",
        WIDTH,
        HEIGHT,
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        description,
        LEFT,
        TOP + plot_height,
        WIDTH - RIGHT,
        TOP + plot_height,
        LEFT - 6,
        TOP + 10,
        f"{top:,}",
        LEFT - 6,
        TOP + plot_height,
        body,
    )


ROW = 22
LABEL_WIDTH = 230


def hbar_chart(bars: list[Bar], *, title: str, description: str, chart_id: str) -> SafeString:
    """An accessible SVG chart of horizontal bars, one row per bar: its label at the left, its
    value at the bar's end (long labels, such as model names, stay legible)."""
    top = max((bar.value for bar in bars), default=0) or 1
    room = WIDTH - LABEL_WIDTH - 70
    rows = format_html_join(
        "",
        '<g><text class="chart-label" x="{}" y="{}" text-anchor="end">{}</text>'
        '<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>'
        '<text class="chart-label" x="{}" y="{}">{}</text></g>',
        (
            (
                LABEL_WIDTH - 8,
                index * ROW + 15,
                bar.label,
                LABEL_WIDTH,
                index * ROW + 4,
                f"{room * max(bar.value, 0) / top:.1f}",
                ROW - 8,
                bar.tooltip,
                f"{LABEL_WIDTH + room * max(bar.value, 0) / top + 6:.1f}",
                index * ROW + 15,
                f"{bar.value:,}",
            )
            for index, bar in enumerate(bars)
        ),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title {}-desc">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        WIDTH,
        max(len(bars), 1) * ROW + 4,
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        description,
        rows,
    )
