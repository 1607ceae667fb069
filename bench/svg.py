"""A grouped horizontal bar chart as a standalone SVG file, in plain Python.

The benchmark's figures are a handful of bars; a plotting library would be a heavy dependency
for that, and an SVG opens in any browser and renders in the README's viewers as it is.
"""

from __future__ import annotations

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
    width = _LABEL_WIDTH + _PLOT_WIDTH + 90
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for index, name in enumerate(series):
        x = _LABEL_WIDTH + index * 80
        parts.append(
            f'<rect x="{x}" y="{height - 20}" width="10" height="10" '
            f'fill="{_COLOURS[index % len(_COLOURS)]}"/>'
            f'<text x="{x + 14}" y="{height - 11}">{escape(name)}</text>'
        )
    for row, (label, values) in enumerate(rows.items()):
        y = _TOP + row * group
        parts.append(
            f'<text x="{_LABEL_WIDTH - 8}" y="{y + len(series) * _BAR / 2 + 4}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        for index, value in enumerate(values):
            length = _PLOT_WIDTH * value / largest
            top = y + index * _BAR
            parts.append(
                f'<rect x="{_LABEL_WIDTH}" y="{top}" width="{length:.1f}" height="{_BAR - 2}" '
                f'fill="{_COLOURS[index % len(_COLOURS)]}"/>'
                f'<text x="{_LABEL_WIDTH + length + 4:.1f}" y="{top + _BAR - 4}">'
                f"{value:.2f} {escape(unit)}</text>"
            )
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def cdf_chart(path: Path, title: str, unit: str, series: Mapping[str, Sequence[float]]) -> None:
    """One empirical cumulative distribution per series (a step line: the share of samples at
    most x), on a common x axis from 0 to the largest sample, with the p50 and p99 marked."""
    largest = max((value for values in series.values() for value in values), default=0.0) or 1.0
    left, top, plot_width, plot_height = 60, 40, 560, 300
    width, height = left + plot_width + 40, top + plot_height + 70

    def x(value: float) -> float:
        return left + plot_width * value / largest

    def y(share: float) -> float:
        return top + plot_height * (1 - share)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{y(0)}" x2="{left + plot_width}" y2="{y(0)}" stroke="black"/>',
        f'<line x1="{left}" y1="{y(0)}" x2="{left}" y2="{y(1)}" stroke="black"/>',
    ]
    for share in (0.5, 0.99, 1.0):
        parts.append(
            f'<line x1="{left}" y1="{y(share):.1f}" x2="{left + plot_width}" y2="{y(share):.1f}" '
            f'stroke="#cccccc" stroke-dasharray="3,3"/>'
            f'<text x="{left - 6}" y="{y(share) + 4:.1f}" text-anchor="end">p{share * 100:g}</text>'
        )
    for tick in range(5):
        value = largest * tick / 4
        parts.append(
            f'<text x="{x(value):.1f}" y="{y(0) + 16}" text-anchor="middle">'
            f"{value:.3g} {escape(unit)}</text>"
        )
    for index, (name, values) in enumerate(series.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        ordered = sorted(values)
        points = [f"{x(0):.1f},{y(0):.1f}"]
        for rank, value in enumerate(ordered, start=1):
            previous = (rank - 1) / len(ordered)
            points.append(
                f"{x(value):.1f},{y(previous):.1f} {x(value):.1f},{y(rank / len(ordered)):.1f}"
            )
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
            f'stroke-width="1.5"/>'
            f'<rect x="{left + index * 200}" y="{height - 20}" width="10" height="10" '
            f'fill="{colour}"/>'
            f'<text x="{left + index * 200 + 14}" y="{height - 11}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")
