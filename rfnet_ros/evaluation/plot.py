"""A small line/scatter plot drawn with OpenCV (no plotting library needed), written as a PNG."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
COLORS = ((180, 90, 20), (30, 120, 230), (60, 160, 60), (40, 40, 200), (150, 60, 150))  # BGR


@dataclass
class Series:
    """Points (x, y) joined by a line in x order, each with an optional text label."""

    label: str
    xs: list[float]
    ys: list[float]
    notes: list[str] = field(default_factory=list)


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    span = max(high - low, 1e-12)
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _text(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.5, color=(40, 40, 40),
          anchor: str = "left") -> None:
    (w, h), _ = cv2.getTextSize(text, FONT, scale, 1)
    x, y = org
    if anchor == "center":
        x -= w // 2
    elif anchor == "right":
        x -= w
    cv2.putText(canvas, text, (x, y + h // 2), FONT, scale, color, 1, cv2.LINE_AA)


def line_plot(path: Path, series: list[Series], title: str, x_label: str, y_label: str,
              x_marks: list[tuple[float, str]] = (), y_range: tuple[float, float] | None = None,
              size: tuple[int, int] = (640, 960)) -> None:
    """Draw ``series`` on shared axes and write a PNG; ``x_marks`` are labelled ticks along the x axis."""
    h, w = size
    left, right, top, bottom = 90, 30, 60, 110
    canvas = np.full((h, w, 3), 255, np.uint8)
    xs = [x for s in series for x in s.xs] + [x for x, _ in x_marks]
    ys = [y for s in series for y in s.ys]
    x_lo, x_hi = 0.0, max(xs) * 1.08 if xs else 1.0
    if y_range is None:
        y_range = (0.0, max(1e-6, max(ys) * 1.15) if ys else 1.0)
    y_lo, y_hi = y_range
    x_ticks, y_ticks = nice_ticks(x_lo, x_hi), nice_ticks(y_lo, y_hi)
    x_hi, y_hi = max(x_hi, x_ticks[-1]), max(y_hi, y_ticks[-1])

    def px(x: float, y: float) -> tuple[int, int]:
        return (int(round(left + (x - x_lo) / (x_hi - x_lo) * (w - left - right))),
                int(round(h - bottom - (y - y_lo) / (y_hi - y_lo) * (h - top - bottom))))

    for t in y_ticks:
        cv2.line(canvas, px(x_lo, t), px(x_hi, t), (230, 230, 230), 1)
        _text(canvas, f"{t:g}", (left - 8, px(x_lo, t)[1]), 0.45, anchor="right")
    for t in x_ticks:
        cv2.line(canvas, px(t, y_lo), px(t, y_hi), (230, 230, 230), 1)
        _text(canvas, f"{t:g}", (px(t, y_lo)[0], h - bottom + 14), 0.45, anchor="center")
    cv2.rectangle(canvas, px(x_lo, y_hi), px(x_hi, y_lo), (60, 60, 60), 1)
    for x, label in x_marks:
        bx, by = px(x, y_lo)
        cv2.line(canvas, (bx, by), (bx, by - 8), (120, 120, 120), 2)
        _text(canvas, label, (bx, by - 16), 0.4, (120, 120, 120), anchor="center")
    _text(canvas, title, (w // 2, 25), 0.6, anchor="center")
    _text(canvas, x_label, (left + (w - left - right) // 2, h - bottom + 42), 0.5, anchor="center")
    label_img = np.full((30, h - top - bottom, 3), 255, np.uint8)
    _text(label_img, y_label, (label_img.shape[1] // 2, 14), 0.5, anchor="center")
    rotated = cv2.rotate(label_img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    canvas[top:top + rotated.shape[0], 8:8 + rotated.shape[1]] = rotated

    for index, s in enumerate(series):
        color = COLORS[index % len(COLORS)]
        order = np.argsort(s.xs)
        points = [px(s.xs[i], s.ys[i]) for i in order]
        for a, b in zip(points, points[1:]):
            cv2.line(canvas, a, b, color, 2, cv2.LINE_AA)
        for i, p in zip(order, points):
            cv2.circle(canvas, p, 5, color, -1, cv2.LINE_AA)
            if i < len(s.notes) and s.notes[i]:
                _text(canvas, s.notes[i], (p[0] + 7, p[1] - 10), 0.4, color)
        legend_x, legend_y = left + index * 220, h - bottom + 68
        cv2.line(canvas, (legend_x, legend_y), (legend_x + 24, legend_y), color, 2)
        _text(canvas, s.label, (legend_x + 30, legend_y), 0.45)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), canvas):
        raise OSError(f"cannot write {path}")
