"""Bar charts, line charts and CDFs as standalone SVG files, in plain Python.

The benchmarks' figures are a handful of bars or lines; a plotting library would be a heavy
dependency for that, and an SVG opens in any browser and renders in the README's viewers as it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

# One colour per series (p50, p99, ...), readable on white and by the colour-blind.
_COLOURS = ("#4477aa", "#ee6677", "#228833", "#ccbb44")
_BAR, _GAP, _LABEL_WIDTH, _PLOT_WIDTH, _TOP = 14, 10, 330, 420, 40


def bar_chart(
    path: Path,
    title: str,
    unit: str,
    rows: Mapping[str, Sequence[float]],
    series: Sequence[str],
) -> None:
    """One group of bars per row (a label and one value per series), scaled to the largest."""
    largest = max((value for values in rows.values() for value in values), default=0.0) or 1.0
    group = len(series) * _BAR + _GAP
    height = _TOP + len(rows) * group + 30
    # ~7 px per character of 12 px sans-serif: long labels widen the chart instead of being cut.
    label_width = max(_LABEL_WIDTH, 7 * max((len(label) for label in rows), default=0) + 20)
    width = label_width + _PLOT_WIDTH + 90
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    x = label_width
    for index, name in enumerate(series):
        parts.append(
            f'<rect x="{x}" y="{height - 20}" width="10" height="10" '
            f'fill="{_COLOURS[index % len(_COLOURS)]}"/>'
            f'<text x="{x + 14}" y="{height - 11}">{escape(name)}</text>'
        )
        x += max(80, 14 + 7 * len(name) + 16)  # the next legend entry after this one's text
    for row, (label, values) in enumerate(rows.items()):
        y = _TOP + row * group
        parts.append(
            f'<text x="{label_width - 8}" y="{y + len(series) * _BAR / 2 + 4}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        for index, value in enumerate(values):
            length = _PLOT_WIDTH * value / largest
            top = y + index * _BAR
            parts.append(
                f'<rect x="{label_width}" y="{top}" width="{length:.1f}" height="{_BAR - 2}" '
                f'fill="{_COLOURS[index % len(_COLOURS)]}"/>'
                f'<text x="{label_width + length + 4:.1f}" y="{top + _BAR - 4}">'
                f"{value:.2f} {escape(unit)}</text>"
            )
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


_WIDTH, _HEIGHT, _LEFT, _RIGHT, _BOTTOM = 640, 400, 70, 20, 70


def _ticks(largest: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `largest` (1, 2 or 5 times a power of ten apart)."""
    raw = (largest or 1.0) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [step * n for n in range(math.ceil(largest / step) + 1 if largest else 2)]


def _tick_text(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value:,.0f}"


def line_chart(
    path: Path,
    title: str,
    x_label: str,
    y_label: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    steps: bool = False,
    target: float | None = None,
) -> None:
    """One line per series of (x, y) points on shared axes from 0; `steps` draws a staircase
    (each y holds until the next x), which is what a CDF or a completion count is; `target`, if
    given, is a dashed horizontal line (a limit to stay under)."""
    points = [point for line in series.values() for point in line]
    x_ticks = _ticks(max((x for x, _ in points), default=0.0))
    y_ticks = _ticks(max([y for _, y in points] + [target or 0.0]))
    plot_width = _WIDTH - _LEFT - _RIGHT
    plot_height = _HEIGHT - _TOP - _BOTTOM

    def at(x: float, y: float) -> str:
        left = _LEFT + plot_width * x / x_ticks[-1]
        top = _TOP + plot_height * (1 - y / y_ticks[-1])
        return f"{left:.1f},{top:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{_WIDTH}" height="{_HEIGHT}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    bottom = _TOP + plot_height
    for value in x_ticks:
        x_text = at(value, 0).split(",")[0]
        parts.append(
            f'<line x1="{x_text}" y1="{_TOP}" x2="{x_text}" y2="{bottom}" stroke="#dddddd"/>'
            f'<text x="{x_text}" y="{bottom + 16}" text-anchor="middle">{_tick_text(value)}</text>'
        )
    for value in y_ticks:
        y_text = at(0, value).split(",")[1]
        parts.append(
            f'<line x1="{_LEFT}" y1="{y_text}" x2="{_WIDTH - _RIGHT}" y2="{y_text}" '
            f'stroke="#dddddd"/><text x="{_LEFT - 6}" y="{float(y_text) + 4:.1f}" '
            f'text-anchor="end">{_tick_text(value)}</text>'
        )
    if target is not None:
        y_text = at(0, target).split(",")[1]
        parts.append(
            f'<line x1="{_LEFT}" y1="{y_text}" x2="{_WIDTH - _RIGHT}" y2="{y_text}" '
            f'stroke="#cc3311" stroke-dasharray="6,4"/><text x="{_WIDTH - _RIGHT}" '
            f'y="{float(y_text) - 4:.1f}" text-anchor="end" fill="#cc3311">target</text>'
        )
    parts += [
        f'<text x="{_LEFT + plot_width / 2}" y="{bottom + 34}" text-anchor="middle">'
        f"{escape(x_label)}</text>",
        f'<text x="14" y="{_TOP + plot_height / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_TOP + plot_height / 2})">{escape(y_label)}</text>',
    ]
    for index, (name, line) in enumerate(series.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        ordered = sorted(line)
        if steps:
            stairs: list[tuple[float, float]] = []
            for x, y in ordered:
                if stairs:
                    stairs.append((x, stairs[-1][1]))
                stairs.append((x, y))
            ordered = stairs
        if ordered:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                f'points="{" ".join(at(x, y) for x, y in ordered)}"/>'
            )
        legend_x = _LEFT + index * 200
        parts.append(
            f'<rect x="{legend_x}" y="{_HEIGHT - 18}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{_HEIGHT - 9}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def cdf_chart(
    path: Path,
    title: str,
    unit: str,
    samples: Mapping[str, Sequence[float]],
    y_label: str = "share at or below",
) -> None:
    """The empirical distribution of each series' samples: the share at or below each value."""
    series = {
        name: [(value, (rank + 1) / len(values)) for rank, value in enumerate(sorted(values))]
        for name, values in samples.items()
    }
    line_chart(path, title, unit, y_label, series, steps=True)
