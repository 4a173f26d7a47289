"""Parallax sequences: a camera moving past two textured planes at different depths, with occlusion.

A scene with depth, which the planar sequences (:mod:`rfnet_ros.evaluation.sequences`) lack: a near panel
(``PANEL_DEPTH`` m, textured with one photo of the split, slightly tilted) stands in front of a far wall
(``WALL_DEPTH`` m, textured with another), and the camera (pinhole, focal length ``max(h, w)`` px, principal
point at the frame centre) translates mostly sideways, with a little forward motion and a small rotation. The
panel hides part of the wall, and as the camera moves, wall points go behind the panel and come out from
behind it. Parallax between the planes is about ``PARALLAX_PX`` px per frame.

Truth is per pixel. For plane k (normal n_k, distance d_k in the first camera's frame) and camera t at
centre C_t with rotation R_t, the homography H_k,t = K R_t (I - C_t n_k^T / d_k) K^-1 maps first-frame
pixels on plane k to frame t. ``labels[t]`` (H, W) says which plane each pixel of frame t shows (``WALL`` or
``PANEL``). A point p of frame t - 1 on plane k = labels[t - 1][p] goes to q = H_k,t H_k,t-1^-1 p in frame
t, and is visible there when q is in the frame and labels[t][q] == k; otherwise it is occluded (or out of
view). Points within ``BOUNDARY_PX`` px of the panel's outline in frame t - 1 are on both planes' texture at
once (a corner the panel's edge makes with the wall): either plane's motion counts for them.

The path is drawn per sequence from ``default_rng((seed, crc32(name), 30))``; frames carry a mild gain
change and sensor noise. Frames are 480x640 grayscale uint8, as the other sets.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rfnet_ros.evaluation.metrics import warp_points
from rfnet_ros.evaluation.pairs import SIZE, photo_paths, read_gray, to_uint8

FRAMES = 10
WALL, PANEL = 0, 1
PLANES = ("wall", "panel")
WALL_DEPTH = 8.0  # m
PANEL_DEPTH = 3.0  # m
PARALLAX_PX = 5.0  # px per frame between panel and wall, sideways
MAX_PANEL_TILT = 0.15  # rad
MAX_ROTATION_DEG = 0.3  # per frame, about each axis
PANEL_SIZE = (0.6, 0.45)  # share of the frame's height and width the panel covers in the middle frame
WALL_MARGIN = 1.5  # the wall's texture covers this many frame sizes
BOUNDARY_PX = 2.0
MAX_LOG_GAIN = 0.15
NOISE = (0.003, 0.01)


@dataclass
class ParallaxSequence:
    """Frames (H, W) uint8, labels (H, W) uint8 (``WALL``, ``PANEL``) and homographies[k][t]: frame-0 px on
    plane k -> frame-t px (homographies[k][0] = I)."""

    name: str
    frames: list[np.ndarray]
    labels: list[np.ndarray]
    homographies: tuple[list[np.ndarray], list[np.ndarray]]

    def step(self, plane: int, t: int) -> np.ndarray:
        """Plane ``plane``'s homography from frame t - 1 to frame t."""
        h = self.homographies[plane][t] @ np.linalg.inv(self.homographies[plane][t - 1])
        return h / h[2, 2]

    def truth(self, points: np.ndarray, t: int) -> dict[str, np.ndarray]:
        """Where points (N, 2) px of frame t - 1 go in frame t.

        Returns plane (N,) the plane each is on; expected (N, 2) its place in frame t under that plane's motion;
        other (N, 2) its place under the other plane's motion; visible (N,) bool, in frame t and not hidden by
        the other plane; boundary (N,) bool, within ``BOUNDARY_PX`` of the panel's outline in frame t - 1.
        """
        points = np.asarray(points, np.float64).reshape(-1, 2)
        plane = sample(self.labels[t - 1], points).astype(np.int64)
        on_wall, on_panel = (warp_points(self.step(k, t), points) for k in (WALL, PANEL))
        expected = np.where((plane == PANEL)[:, None], on_panel, on_wall)
        other = np.where((plane == PANEL)[:, None], on_wall, on_panel)
        h, w = self.labels[t].shape
        inside = np.all(np.isfinite(expected), axis=1) & (expected[:, 0] > -0.5) & (expected[:, 0] < w - 0.5) \
            & (expected[:, 1] > -0.5) & (expected[:, 1] < h - 0.5)
        visible = inside.copy()
        visible[inside] = sample(self.labels[t], expected[inside]) == plane[inside]
        return {"plane": plane, "expected": expected, "other": other, "visible": visible,
                "boundary": sample(boundary_distance(self.labels[t - 1]), points) <= BOUNDARY_PX}


def sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``image`` at the pixels nearest to points (N, 2) (clamped to the image)."""
    h, w = image.shape[:2]
    x = np.clip(np.rint(points[:, 0]), 0, w - 1).astype(np.int64)
    y = np.clip(np.rint(points[:, 1]), 0, h - 1).astype(np.int64)
    return image[y, x]


def boundary_distance(labels: np.ndarray) -> np.ndarray:
    """Distance (px, float32) of each pixel to the nearest pixel whose label differs from a neighbour's."""
    edge = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    if not edge.any():
        return np.full(labels.shape, np.inf, np.float32)
    return cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 3)


def rotation(angles: np.ndarray) -> np.ndarray:
    """The rotation matrix of a rotation vector (rad)."""
    return cv2.Rodrigues(np.asarray(angles, np.float64).reshape(3, 1))[0]


def plane_homography(K: np.ndarray, R: np.ndarray, centre: np.ndarray, normal: np.ndarray, depth: float) -> np.ndarray:
    """First-frame px -> px of a camera at ``centre`` rotated by ``R``, for the plane n^T X = depth."""
    h = K @ R @ (np.eye(3) - np.outer(centre, normal) / depth) @ np.linalg.inv(K)
    return h / h[2, 2]


def cover(photo: np.ndarray, height: float, width: float, left: float, top: float) -> tuple[np.ndarray, np.ndarray]:
    """``photo`` as float [0, 1] and the map (3x3) that scales it to cover the rectangle at (left, top), centred."""
    ph, pw = photo.shape[:2]
    s = max(height / ph, width / pw)
    to_rect = np.array([[s, 0, left - (pw * s - width) / 2], [0, s, top - (ph * s - height) / 2], [0, 0, 1]])
    return photo.astype(np.float32) / 255.0, to_rect


def parallax_sequence(name: str, wall: np.ndarray, panel: np.ndarray, seed: int, frames: int = FRAMES,
                      size: tuple[int, int] = SIZE) -> ParallaxSequence:
    """One sequence of ``frames`` frames: ``panel`` (grayscale photo) on the near plane over ``wall`` (module
    docstring)."""
    h, w = size
    rng = np.random.default_rng((seed, zlib.crc32(name.encode()), 30))
    focal = float(max(h, w))
    K = np.array([[focal, 0, (w - 1) / 2.0], [0, focal, (h - 1) / 2.0], [0, 0, 1]])
    speed = PARALLAX_PX / (focal * (1 / PANEL_DEPTH - 1 / WALL_DEPTH))  # m per frame
    heading = rng.uniform(-np.pi / 6, np.pi / 6) + rng.choice([0.0, np.pi])
    velocity = np.array([speed * np.cos(heading), speed * np.sin(heading), rng.uniform(-0.3, 0.3) * speed])
    spin = np.radians(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, 3))
    tilt = rng.uniform(-MAX_PANEL_TILT, MAX_PANEL_TILT, 2)
    normals = (np.array([0.0, 0.0, 1.0]), np.array([np.sin(tilt[0]), np.sin(tilt[1]), 1.0]))
    normals = (normals[0], normals[1] / np.linalg.norm(normals[1]))
    depths = (WALL_DEPTH, PANEL_DEPTH)
    cameras = [(rotation(spin * t), velocity * t) for t in range(frames)]
    homographies = tuple([plane_homography(K, R, c, normals[k], depths[k]) for R, c in cameras] for k in (WALL, PANEL))
    # The panel: a rectangle centred in the middle frame, so it stays in view along the path.
    middle = homographies[PANEL][frames // 2]
    centre = warp_points(np.linalg.inv(middle), np.array([[(w - 1) / 2.0, (h - 1) / 2.0]]))[0]
    ph, pw = PANEL_SIZE[0] * h, PANEL_SIZE[1] * w
    left, top = centre[0] - pw / 2, centre[1] - ph / 2
    wall_texture, wall_map = cover(wall, WALL_MARGIN * h, WALL_MARGIN * w, -(WALL_MARGIN - 1) * w / 2,
                                   -(WALL_MARGIN - 1) * h / 2)
    panel_texture, panel_map = cover(panel, ph, pw, left, top)
    panel_outline = np.zeros(panel_texture.shape[:2], np.float32)
    ph_px, pw_px = panel_texture.shape[:2]
    x0, y0 = np.linalg.solve(panel_map, [left, top, 1.0])[:2]
    x1, y1 = np.linalg.solve(panel_map, [left + pw, top + ph, 1.0])[:2]
    rows = slice(max(int(round(y0)), 0), min(int(round(y1)), ph_px))
    panel_outline[rows, max(int(round(x0)), 0):min(int(round(x1)), pw_px)] = 1
    gain = np.exp(rng.uniform(-MAX_LOG_GAIN, MAX_LOG_GAIN) * np.sin(np.linspace(0, np.pi, frames)))
    noise = rng.uniform(*NOISE)
    images, labels = [], []
    for t in range(frames):
        far = cv2.warpPerspective(wall_texture, homographies[WALL][t] @ wall_map, (w, h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REFLECT)
        near_map = homographies[PANEL][t] @ panel_map
        near = cv2.warpPerspective(panel_texture, near_map, (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
        alpha = cv2.warpPerspective(panel_outline, near_map, (w, h), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT)
        view = far * (1 - alpha) + near * alpha
        view = view * gain[t] + rng.normal(0.0, noise, size=view.shape)
        images.append(to_uint8(np.clip(view, 0.0, 1.0)))
        labels.append((alpha >= 0.5).astype(np.uint8))
    return ParallaxSequence(name, images, labels, homographies)


def parallax_sequences(folder: Path, seed: int, frames: int = FRAMES, size: tuple[int, int] = SIZE,
                       max_photos: int | None = None) -> list[ParallaxSequence]:
    """One sequence per photo of ``folder`` (sorted by name; the first ``max_photos`` if given): that photo as
    the wall, the split's next one (cyclically) as the panel; named ``wall+panel``."""
    paths = photo_paths(folder)
    out = []
    for i, path in enumerate(paths[:max_photos]):
        panel = paths[(i + 1) % len(paths)]
        out.append(parallax_sequence(f"{path.stem}+{panel.stem}", read_gray(path), read_gray(panel), seed, frames,
                                     size))
    return out
