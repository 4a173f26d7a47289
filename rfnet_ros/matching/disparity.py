"""Sub-pixel disparity of left-right matches on a rectified stereo pair, by correlation along the row.

On rectified images a point of the left image lies on the same row of the right image, shifted left by its
disparity. Given a matched pair, a window around the left keypoint (at its nearest pixel) is compared with the
right image along that row, a few pixels either side of the match (OpenCV ``matchTemplate``, normalised
cross-correlation); the best place is refined to a fraction of a pixel by a parabola through the best score
and its two neighbours. A match whose best correlation is below ``min_correlation``, or lies at the edge of the
search, keeps no refined place (``ok`` False).
"""
from __future__ import annotations

import cv2
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
    for i, (lx, ly) in enumerate(left_points):
        x, y = int(round(lx)), int(round(ly))
        # The right x where the left pixel x lands at the match's disparity, rounded.
        cx = int(round(x - disparities[i]))
        if not (r <= y < height - r and r <= x < width - r and r + s <= cx < width - r - s):
            continue
        template = left[y - r:y + r + 1, x - r:x + r + 1]
        strip = right[y - r:y + r + 1, cx - s - r:cx + s + r + 1]
        scores = cv2.matchTemplate(strip, template, cv2.TM_CCOEFF_NORMED)[0]
        best = int(np.argmax(scores))
        if scores[best] < min_correlation or best in (0, len(scores) - 1):
            continue
        below, peak, above = scores[best - 1], scores[best], scores[best + 1]
        curvature = below - 2 * peak + above
        offset = 0.5 * (below - above) / curvature if curvature < 0 else 0.0
        disparities[i] = x - (cx - s + best + offset)
        ok[i] = True
    return disparities, ok
