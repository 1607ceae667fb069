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


def line_chart(
    path: Path,
    title: str,
    x_label: str,
    unit: str,
    lines: Mapping[str, Sequence[tuple[float, float]]],
    target: float | None = None,
) -> None:
    """One line of (x, y) points per series on shared axes from 0, each point labelled with its
    value; `target`, if given, is a dashed horizontal line (a limit to stay under)."""
    points = [point for series in lines.values() for point in series]
    x_max = max((x for x, _ in points), default=0.0) or 1.0
    y_max = max([y for _, y in points] + [target or 0.0]) * 1.1 or 1.0
    left, top, plot_w, plot_h = 70, 40, 520, 260
    width, height = left + plot_w + 60, top + plot_h + 50 + 16 * len(lines)

    def at(x: float, y: float) -> tuple[float, float]:
        return left + plot_w * x / x_max, top + plot_h * (1 - y / y_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" '
        f'stroke="black"/>',
        f'<text x="{left + plot_w / 2}" y="{top + plot_h + 32}" text-anchor="middle">'
        f"{escape(x_label)}</text>",
        f'<text x="{left - 8}" y="{top + 4}" text-anchor="end">{y_max:.0f} {escape(unit)}</text>',
        f'<text x="{left - 8}" y="{top + plot_h + 4}" text-anchor="end">0</text>',
    ]
    for x in sorted({x for x, _ in points}):
        px, _ = at(x, 0)
        parts.append(
            f'<text x="{px:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{x:g}</text>'
        )
    if target is not None:
        _, py = at(0, target)
        parts.append(
            f'<line x1="{left}" y1="{py:.1f}" x2="{left + plot_w}" y2="{py:.1f}" stroke="grey" '
            f'stroke-dasharray="6 4"/><text x="{left + plot_w}" y="{py - 4:.1f}" '
            f'text-anchor="end" fill="grey">target {target:.0f} {escape(unit)}</text>'
        )
    for index, (name, series) in enumerate(lines.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        coords = [at(x, y) for x, y in sorted(series)]
        path_points = " ".join(f"{px:.1f},{py:.1f}" for px, py in coords)
        parts.append(
            f'<polyline points="{path_points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        for (px, py), (_, y) in zip(coords, sorted(series), strict=True):
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>'
                f'<text x="{px + 5:.1f}" y="{py - 5:.1f}" fill="{colour}">{y:.1f}</text>'
            )
        legend_y = top + plot_h + 42 + 16 * index
        parts.append(
            f'<rect x="{left}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + 14}" y="{legend_y}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")
