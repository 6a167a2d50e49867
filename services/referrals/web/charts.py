"""Charts for the reporting pages, drawn on the server as inline SVG: pure functions from
figures to markup, no JavaScript and no library.

Each chart is an image to assistive technology (``role="img"``) named by its ``<title>``
and described by its ``<desc>``; the same numbers are always in the table beside it, so the
chart adds nothing a screen-reader user misses. Every label is escaped here: a partner id or
a district comes from events, never trusted as markup. Colours are attributes, not inline
styles, so the pages' Content-Security-Policy (no inline styles) holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

BAR_COLOUR = "#1d70b8"
TEXT_COLOUR = "#0b0c0c"
AXIS_COLOUR = "#505a5f"
# Distinct in hue and dash, so lines can be told apart without colour too.
LINE_STYLES = (
    ("#1d70b8", ""),
    ("#d4351c", "6 3"),
    ("#00703c", "2 3"),
    ("#4c2c92", "10 3 2 3"),
    ("#b58840", "1 1"),
    ("#0b0c0c", "12 4"),
)
CHAR_WIDTH = 8.0  # px of a 13px system-ui character, generously: labels must not clip
MAX_LABEL_CHARS = 40
BAR_HEIGHT = 22
BAR_GAP = 8
VALUE_ROOM = 70  # px right of the longest bar for its figure


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str | None = None  # the figure as written beside the bar; default the value


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]


def _text(value: object) -> str:
    return escape(str(value), quote=True)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def _open(chart_id: str, title: str, description: str, width: float, height: float) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{_text(chart_id)}" '
        f'role="img" aria-labelledby="{_text(chart_id)}-title {_text(chart_id)}-desc" '
        f'width="{width:g}" height="{height:g}" viewBox="0 0 {width:g} {height:g}">'
        f'<title id="{_text(chart_id)}-title">{_text(title)}</title>'
        f'<desc id="{_text(chart_id)}-desc">{_text(description)}</desc>'
    )


def _empty(chart_id: str, title: str, description: str) -> str:
    return (
        _open(chart_id, title, description, 400, 40)
        + f'<text x="0" y="25" fill="{TEXT_COLOUR}" font-size="14">No figures to show.</text>'
        "</svg>"
    )


def bar_lengths(values: Sequence[float], full: float) -> list[float]:
    """Each value's bar length, proportional to it, the largest ``full`` long; negative
    values and an all-zero set draw nothing."""
    largest = max((v for v in values if v > 0), default=0.0)
    if largest <= 0:
        return [0.0 for _ in values]
    return [round(max(v, 0.0) / largest * full, 2) for v in values]


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    bars: Sequence[Bar],
    *,
    plot_width: float = 420,
) -> str:
    """A horizontal bar chart: one labelled bar per figure, its value written beside it."""
    if not bars:
        return _empty(chart_id, title, description)
    label_width = max(len(_short(b.label)) for b in bars) * CHAR_WIDTH + 16
    width = label_width + plot_width + VALUE_ROOM
    height = len(bars) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
    parts = [_open(chart_id, title, description, width, height)]
    lengths = bar_lengths([b.value for b in bars], plot_width)
    parts.append(
        f'<line x1="{label_width:g}" y1="0" x2="{label_width:g}" y2="{height:g}" '
        f'stroke="{AXIS_COLOUR}" stroke-width="1"/>'
    )
    for index, (bar, length) in enumerate(zip(bars, lengths, strict=True)):
        top = BAR_GAP + index * (BAR_HEIGHT + BAR_GAP)
        middle = top + BAR_HEIGHT / 2 + 4
        shown = bar.shown if bar.shown is not None else _number(bar.value)
        parts.append(
            f'<g class="bar"><title>{_text(bar.label)}: {_text(shown)}</title>'
            f'<text x="{label_width - 8:g}" y="{middle:g}" text-anchor="end" '
            f'fill="{TEXT_COLOUR}" font-size="13">{_text(_short(bar.label))}</text>'
            f'<rect x="{label_width:g}" y="{top:g}" width="{length:g}" '
            f'height="{BAR_HEIGHT}" fill="{BAR_COLOUR}"/>'
            f'<text x="{label_width + length + 6:g}" y="{middle:g}" fill="{TEXT_COLOUR}" '
            f'font-size="13">{_text(shown)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    chart_id: str,
    title: str,
    description: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    plot_width: float = 560,
    plot_height: float = 200,
) -> str:
    """Lines over labelled points (weeks, say), a legend beneath; a y axis from zero to the
    largest value. One point draws a marker only."""
    if not x_labels or not series:
        return _empty(chart_id, title, description)
    for one in series:
        if len(one.values) != len(x_labels):
            raise ValueError(f"series {one.name!r} has {len(one.values)} values, not one a label")
    left, top, bottom_room = 50.0, 10.0, 40.0
    legend_top = top + plot_height + bottom_room
    width = left + plot_width + 20
    height = legend_top + len(series) * 20 + 10
    largest = max((max(s.values, default=0) for s in series), default=0)
    scale = max(largest, 1)
    step = plot_width / max(len(x_labels) - 1, 1)

    def x(index: int) -> float:
        return round(left + (index * step if len(x_labels) > 1 else plot_width / 2), 2)

    def y(value: float) -> float:
        return round(top + plot_height - max(value, 0) / scale * plot_height, 2)

    parts = [_open(chart_id, title, description, width, height)]
    base = top + plot_height
    parts.append(
        f'<line x1="{left:g}" y1="{base:g}" x2="{left + plot_width:g}" y2="{base:g}" '
        f'stroke="{AXIS_COLOUR}"/><line x1="{left:g}" y1="{top:g}" x2="{left:g}" '
        f'y2="{base:g}" stroke="{AXIS_COLOUR}"/>'
        f'<text x="{left - 6:g}" y="{base + 4:g}" text-anchor="end" fill="{TEXT_COLOUR}" '
        f'font-size="12">0</text><text x="{left - 6:g}" y="{top + 4:g}" text-anchor="end" '
        f'fill="{TEXT_COLOUR}" font-size="12">{_text(_number(scale))}</text>'
    )
    # Every label if they fit, else every few: the table lists every week.
    every = max(1, round(len(x_labels) / max(plot_width // 80, 1)))
    for index, label in enumerate(x_labels):
        if index % every == 0 or index == len(x_labels) - 1:
            parts.append(
                f'<text x="{x(index):g}" y="{base + 18:g}" text-anchor="middle" '
                f'fill="{TEXT_COLOUR}" font-size="12">{_text(label)}</text>'
            )
    for number, one in enumerate(series):
        colour, dash = LINE_STYLES[number % len(LINE_STYLES)]
        dashing = f' stroke-dasharray="{dash}"' if dash else ""
        points = " ".join(f"{x(i):g},{y(v):g}" for i, v in enumerate(one.values))
        parts.append(f'<g class="series"><title>{_text(one.name)}</title>')
        if len(one.values) > 1:
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" '
                f'stroke-width="2.5"{dashing}/>'
            )
        parts.extend(
            f'<circle cx="{x(i):g}" cy="{y(v):g}" r="3.5" fill="{colour}"/>'
            for i, v in enumerate(one.values)
        )
        legend_y = legend_top + number * 20
        parts.append(
            f'<line x1="{left:g}" y1="{legend_y:g}" x2="{left + 30:g}" y2="{legend_y:g}" '
            f'stroke="{colour}" stroke-width="2.5"{dashing}/>'
            f'<text x="{left + 38:g}" y="{legend_y + 4:g}" fill="{TEXT_COLOUR}" '
            f'font-size="13">{_text(_short(one.name))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
