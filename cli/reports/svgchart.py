"""Small inline SVG line charts for the HTML report: axes, ticks, a legend, dashed reference lines,
marks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 520, 270
LEFT, RIGHT, TOP, BOTTOM = 72, 14, 34, 38


@dataclass(frozen=True)
class Series:
    """One line: its legend label, colour and (x, y) points; dashed for a limit."""

    label: str
    color: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def line_chart(
    series: Sequence[Series],
    *,
    x_label: str,
    y_format: Callable[[float], str],
    title: str,
    log_y: bool = False,
    y_from_zero: bool | None = None,
    marks: Sequence[float] = (),
    mark_label: str = "",
) -> str:
    """An SVG chart of the series (a string); `marks` are x positions flagged in red along the
    top.
    """
    pts = [p for s in series for p in s.points]
    if not pts and not marks:
        return ""
    xs = [x for x, _ in pts] + list(marks)
    x_lo, x_hi = min(xs), max(xs)
    if x_hi <= x_lo:
        x_hi = x_lo + 1
    ys = [y for _, y in pts] or [0.0, 1.0]
    if log_y:
        ys = [math.log10(y) for y in ys if y > 0] or [0.0]
    y_lo, y_hi = min(ys), max(ys)
    if y_from_zero is None:
        y_from_zero = not log_y
    if y_from_zero:
        y_lo = min(0.0, y_lo)
    pad = (y_hi - y_lo) * 0.06 or abs(y_hi) * 0.1 or 1.0
    y_hi += pad
    if not y_from_zero:
        y_lo -= pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        if log_y:
            y = math.log10(y) if y > 0 else y_lo
        return TOP + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" '
        f'aria-label="{escape(title)}" style="background:#fff;max-width:{WIDTH * 1.6:.0f}px">',
        f"<title>{escape(title)}</title>",
        '<g font-family="system-ui,sans-serif" font-size="11" fill="#5f6a74">',
    ]
    for tick in nice_ticks(y_lo, y_hi):
        value = 10**tick if log_y else tick
        if log_y and abs(tick - round(tick)) > 1e-9:
            continue
        y = py(value)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e9ed"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{escape(y_format(value))}</text>'
        )
    for tick in nice_ticks(x_lo, x_hi):
        x = px(tick)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 4}" '
            f'stroke="#8a939b"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{tick:g}</text>'
        )
    out.append(
        f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 4}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="#c4cad0"/>'
    )
    out.append("</g>")
    for s in series:
        if not s.points:
            continue
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        if len(s.points) == 1:
            x, y = s.points[0]
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{s.color}"/>')
        else:
            out.append(
                f'<polyline class="series" fill="none" stroke="{s.color}" stroke-width="2"{dash} '
                f'points="{coords}"/>'
            )
    for i, x in enumerate(marks):
        out.append(
            f'<line class="mark" x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
            f'stroke="#d1242f" stroke-width="1" stroke-dasharray="2 3"/>'
        )
        if i == 0:  # the label on whichever side of the mark has room
            right = px(x) > LEFT + plot_w * 0.7
            out.append(
                f'<text x="{px(x) + (-4 if right else 4):.1f}" y="{TOP + 12}" text-anchor='
                f'"{"end" if right else "start"}" font-family="system-ui,sans-serif" '
                f'font-size="11" '
                f'fill="#d1242f">{escape(mark_label)}</text>'
            )
    out.append(_legend(series))
    out.append("</svg>")
    return "".join(out)


def _legend(series: Sequence[Series]) -> str:
    parts = ['<g font-family="system-ui,sans-serif" font-size="11" fill="#1d2329">']
    x = LEFT
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        parts.append(
            f'<line x1="{x}" x2="{x + 18}" y1="14" y2="14" stroke="{s.color}" '
            f'stroke-width="2"{dash}/>'
        )
        parts.append(f'<text x="{x + 22}" y="18">{escape(s.label)}</text>')
        x += 30 + 6 * len(s.label)
    parts.append("</g>")
    return "".join(parts)
