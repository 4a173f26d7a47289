"""Pictures of tracked keypoints (OpenCV drawing): the node's debug image and the README's picture.

Keypoints are dots coloured by the length of their track, from blue (new) to red (seen in ``FULL_LENGTH`` or
more frames), as VINS-Mono's tracker draws them; each track's recent positions are drawn as a line
ending at the keypoint (in the debug image: the match to the previous frame). Drawn on a grey copy of
the frame so that the colours stand out, at the frame's size.
"""
from __future__ import annotations

import cv2
import numpy as np

# Track length (frames) drawn fully red.
FULL_LENGTH = 10


def to_bgr8(image: np.ndarray, color_order: str = "bgr") -> np.ndarray:
    """Any frame the pipeline takes ((H, W) or (H, W, 1|3|4), uint8 or uint16) -> (H, W, 3) uint8 BGR."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(np.asarray(image, np.float32) * 255.0, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    codes = {("bgr", 3): None, ("bgr", 4): cv2.COLOR_BGRA2BGR, ("rgb", 3): cv2.COLOR_RGB2BGR,
             ("rgb", 4): cv2.COLOR_RGBA2BGR}
    code = codes[(color_order, image.shape[2])]
    return np.ascontiguousarray(image) if code is None else cv2.cvtColor(image, code)


def length_colors(lengths: np.ndarray) -> np.ndarray:
    """(N,) track lengths -> (N, 3) uint8 BGR: blue for a new track to red at FULL_LENGTH frames."""
    share = np.clip((np.asarray(lengths, np.float32) - 1) / (FULL_LENGTH - 1), 0.0, 1.0)
    return np.stack([255 * (1 - share), np.zeros_like(share), 255 * share], axis=1).round().astype(np.uint8)


def draw_tracks(image: np.ndarray, points: np.ndarray, lengths: np.ndarray, trails: list[np.ndarray],
                color_order: str = "bgr", radius: int = 3) -> np.ndarray:
    """The frame (grey, BGR uint8, its own size) with ``points`` (N, 2) px drawn coloured by ``lengths`` (N,)
    and ``trails``: for each point, its track's earlier positions (K, 2) px, oldest first (K may be 0)."""
    gray = cv2.cvtColor(to_bgr8(image, color_order), cv2.COLOR_BGR2GRAY)
    canvas = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    colors = length_colors(lengths)
    scale = 16  # cv2 drawing with 4 fractional bits: sub-pixel positions
    for point, trail, color in zip(np.asarray(points, np.float64), trails, colors):
        bgr = tuple(int(c) for c in color)
        if len(trail):
            path = np.round(np.vstack([trail, point]) * scale).astype(np.int32)
            cv2.polylines(canvas, [path], False, bgr, 1, cv2.LINE_AA, shift=4)
        center = tuple(int(v) for v in np.round(point * scale))
        cv2.circle(canvas, center, radius * scale, bgr, -1, cv2.LINE_AA, shift=4)
    return canvas


class TrackTrails:
    """The last ``length`` positions of every live track, for drawing each track's path."""

    def __init__(self, length: int = FULL_LENGTH):
        self.length = length
        self._paths: dict[int, list[np.ndarray]] = {}

    def update(self, track_ids: np.ndarray, points: np.ndarray) -> list[np.ndarray]:
        """Each point's earlier positions (K, 2), oldest first, for this frame's ``track_ids`` (N,) at
        ``points`` (N, 2); then remembers this frame (tracks not in it are forgotten)."""
        trails, paths = [], {}
        for track, point in zip(np.asarray(track_ids).tolist(), np.asarray(points, np.float64)):
            path = self._paths.get(track, [])
            trails.append(np.array(path).reshape(-1, 2))
            paths[track] = (path + [point])[-self.length:]
        self._paths = paths
        return trails
