"""A rectified stereo pair with known disparity, rendered from real photographs, for the stereo tests.

Two depth layers, each a photograph: a far wall (``FAR`` px of disparity) and a near board (``NEAR`` px) in
front of it. In the right image every point of a layer lies its disparity to the left of where it lies in the
left image, on the same row, so the true disparity of a left pixel is its layer's. A camera moving to the
left makes the scene move right in the images, the near board twice as fast as the wall (``frame(t)``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WIDTH, HEIGHT = 320, 240
FAR, NEAR = 16, 32
# The near board in the left image of frame 0: x, y, width, height.
BOARD = (90, 50, 140, 130)
# Image motion per frame (px) of the far wall and of the near board.
FAR_STEP, NEAR_STEP = 2, 4
# A pinhole camera for the pair: fx = fy = FOCAL, centre in the middle; right P's Tx = -FOCAL * BASELINE.
FOCAL, BASELINE = 300.0, 0.12


@dataclass
class StereoPair:
    """left, right: (HEIGHT, WIDTH, 3) bgr uint8; disparity: (HEIGHT, WIDTH) float32, the true disparity of each
    left pixel (px); board: (x, y, width, height) of the near board in the left image."""

    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    board: tuple[int, int, int, int]


def render(wall: np.ndarray, board_texture: np.ndarray, t: int = 0) -> StereoPair:
    """Frame ``t`` of the scene: ``wall`` and ``board_texture`` are bgr photographs, at least
    (HEIGHT + 20, WIDTH + FAR + 2 * FAR_STEP * t + 20) and (BOARD height, BOARD width) large."""
    x0 = 10 + FAR + FAR_STEP * 10 - FAR_STEP * t  # the wall moves right by FAR_STEP px per frame
    assert x0 - FAR >= 0, "too many frames for the wall photograph"
    left = np.ascontiguousarray(wall[10:10 + HEIGHT, x0:x0 + WIDTH])
    right = np.ascontiguousarray(wall[10:10 + HEIGHT, x0 + FAR:x0 + FAR + WIDTH])
    bx, by, bw, bh = BOARD
    bx += NEAR_STEP * t
    texture = board_texture[:bh, :bw]
    left[by:by + bh, bx:bx + bw] = texture
    right[by:by + bh, bx - NEAR:bx - NEAR + bw] = texture
    disparity = np.full((HEIGHT, WIDTH), FAR, np.float32)
    disparity[by:by + bh, bx:bx + bw] = NEAR
    return StereoPair(left, right, disparity, (bx, by, bw, bh))


def camera_info_fields(right: bool, baseline: float = BASELINE) -> dict:
    """CameraInfo fields of the rectified pair's left or right camera (right: P's Tx = -FOCAL * baseline)."""
    k = [FOCAL, 0.0, WIDTH / 2, 0.0, FOCAL, HEIGHT / 2, 0.0, 0.0, 1.0]
    p = [FOCAL, 0.0, WIDTH / 2, -FOCAL * baseline if right else 0.0, 0.0, FOCAL, HEIGHT / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return dict(width=WIDTH, height=HEIGHT, distortion_model="plumb_bob", d=[0.0] * 5, k=k,
                r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], p=p)


def true_disparity(pair: StereoPair, left_points: np.ndarray) -> np.ndarray:
    """The true disparity (N,) at left keypoints (N, 2) px: their layer's, read at the nearest pixel."""
    x = np.clip(np.rint(left_points[:, 0]).astype(int), 0, WIDTH - 1)
    y = np.clip(np.rint(left_points[:, 1]).astype(int), 0, HEIGHT - 1)
    return pair.disparity[y, x]


def disparity_report(pair: StereoPair, left_points: np.ndarray, right_points: np.ndarray) -> tuple[float, str]:
    """(share of the pairs whose disparity is within 1 px of the truth and whose rows are within 1 px, a line
    with the counts per layer)."""
    truth = true_disparity(pair, left_points)
    measured = left_points[:, 0] - right_points[:, 0]
    good = (np.abs(measured - truth) <= 1.0) & (np.abs(left_points[:, 1] - right_points[:, 1]) <= 1.0)
    layers = ", ".join(f"{layer} px: {int(good[truth == layer].sum())}/{int((truth == layer).sum())}"
                       for layer in (FAR, NEAR))
    return (float(good.mean()) if len(good) else 0.0), f"{int(good.sum())}/{len(good)} correct ({layers})"
