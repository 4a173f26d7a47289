"""Keypoints spread over the image: a minimum distance between published keypoints, as VINS's ``min_dist``.

Keypoints are taken in priority order (tracked before new, longer tracks first, then stronger), and each one
is kept when no kept keypoint lies within the distance; every kept keypoint blocks a disc around it in a mask
image (drawn with OpenCV, as VINS-Mono's feature tracker does), so the selection costs one look-up per
keypoint instead of pairwise distances.
"""
from __future__ import annotations

import cv2
import numpy as np


def spread(points: np.ndarray, order: np.ndarray, min_distance: float, image_size: tuple[int, int]) -> np.ndarray:
    """Indices (ascending) of the keypoints kept from ``points`` (N, 2) px (x, y) in an image of ``image_size``
    (height, width): taken in ``order`` (N,) (indices, highest priority first), a keypoint is kept when its
    pixel lies outside the disc of radius ``min_distance`` (rounded to whole pixels) around every keypoint kept
    before it. ``min_distance`` <= 0 keeps all."""
    if min_distance <= 0 or len(points) == 0:
        return np.arange(len(points))
    height, width = image_size
    free = np.full((height, width), 255, np.uint8)
    radius = max(1, int(round(min_distance)))
    pixels = np.clip(np.rint(points), 0, [width - 1, height - 1]).astype(np.int32)
    kept = []
    for index in order:
        x, y = pixels[index]
        if free[y, x]:
            kept.append(index)
            cv2.circle(free, (int(x), int(y)), radius, 0, thickness=-1)
    return np.sort(np.asarray(kept, dtype=np.int64))
