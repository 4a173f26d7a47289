"""Sub-pixel disparity of left-right matches on a rectified stereo pair, by correlation along the row.

On rectified images a point of the left image lies on the same row of the right image, shifted left by its
disparity. Given a matched pair, a window around the left keypoint (at its nearest pixel) is compared with the
right image along that row, a few pixels either side of the match (zero-mean normalised
cross-correlation, as OpenCV's ``matchTemplate`` TM_CCOEFF_NORMED computes it, for all matches at once);
the best place is refined to a fraction of a pixel by a parabola through the best score
and its two neighbours. A match whose best correlation is below ``min_correlation``, or lies at the edge of the
search, keeps no refined place (``ok`` False).
"""
from __future__ import annotations

import numpy as np


def refine_disparities(left: np.ndarray, right: np.ndarray, left_points: np.ndarray, right_points: np.ndarray,
                       half_window: int = 5, search: int = 3, min_correlation: float = 0.8
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Disparities of matched keypoints on a rectified pair.

    left, right: (H, W) float32 grey images; left_points, right_points: (S, 2) px (x, y), the matches' places.
    Returns disparities (S,) float64 px (left x minus the right x where the left window correlates best, on the
    left keypoint's row) and ok (S,) bool: the correlation reached ``min_correlation`` inside the search range
    (``search`` px either side of the match); where not ok the disparity is the matched keypoints' own.
    """
    left_points = np.asarray(left_points, np.float64).reshape(-1, 2)
    right_points = np.asarray(right_points, np.float64).reshape(-1, 2)
    disparities = left_points[:, 0] - right_points[:, 0]
    ok = np.zeros(len(left_points), bool)
    height, width = left.shape
    r, s = half_window, search
    x, y = np.rint(left_points[:, 0]).astype(int), np.rint(left_points[:, 1]).astype(int)
    # The right x where the left pixel x lands at the match's disparity, rounded.
    cx = np.rint(x - disparities).astype(int)
    inside = (r <= y) & (y < height - r) & (r <= x) & (x < width - r) & (r + s <= cx) & (cx < width - r - s)
    index = np.flatnonzero(inside)
    if len(index) == 0:
        return disparities, ok
    rows = y[index, None, None] + np.arange(-r, r + 1)[None, :, None]
    template = left[rows, x[index, None, None] + np.arange(-r, r + 1)[None, None, :]].astype(np.float64)
    strip = right[rows, cx[index, None, None] + np.arange(-r - s, r + s + 1)[None, None, :]].astype(np.float64)
    # Zero-mean normalised cross-correlation (OpenCV's TM_CCOEFF_NORMED) at each of the 2 * search + 1 shifts.
    size = 2 * r + 1
    template -= template.mean(axis=(1, 2), keepdims=True)
    windows = np.stack([strip[:, :, k:k + size] for k in range(2 * s + 1)], axis=1)  # (S, shifts, size, size)
    windows = windows - windows.mean(axis=(2, 3), keepdims=True)
    numerator = (windows * template[:, None]).sum(axis=(2, 3))
    denominator = np.sqrt((windows ** 2).sum(axis=(2, 3)) * (template ** 2).sum(axis=(1, 2))[:, None])
    scores = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
    best = scores.argmax(axis=1)
    peak = scores[np.arange(len(index)), best]
    found = (peak >= min_correlation) & (best > 0) & (best < 2 * s)
    at = np.clip(best, 1, 2 * s - 1)
    below, above = scores[np.arange(len(index)), at - 1], scores[np.arange(len(index)), at + 1]
    curvature = below - 2 * peak + above
    offset = np.where(curvature < 0, 0.5 * (below - above) / np.where(curvature < 0, curvature, -1.0), 0.0)
    chosen = index[found]
    disparities[chosen] = x[chosen] - (cx[chosen] - s + best[found] + offset[found])
    ok[chosen] = True
    return disparities, ok
