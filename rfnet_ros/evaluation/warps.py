"""The evaluation's own homographies: random viewpoint changes, and exact rotations and zooms for sweeps.

Written apart from training's sampler (``rfnet_ros.training.homography``) on purpose: the evaluation's
viewpoint pairs must not come from the distribution the model was trained on by construction.

Every homography maps image0 pixels (x, y) of an ``height x width`` image to image1 pixels and is built
about the image centre c = ((w - 1) / 2, (h - 1) / 2) as H = T(c + t) · P · S(s) · R(θ) · T(-c):

- R(θ): in-plane rotation by θ (degrees, positive turns the image content clockwise on screen, x right,
  y down), S(s): isotropic zoom by s, t: a shift in pixels;
- P: a projective tilt [[1, 0, 0], [0, 1, 0], [px, py, 1]] about the centre, i.e. the view of a plane
  seen from a camera turned by small angles: |px|, |py| are in 1/px, drawn as ``tilt / max(h, w)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Viewpoint pairs of the protocol: rotation up to +-30 degrees, zoom 0.75-1.25 (log-uniform), a tilt
# whose far corner moves by up to ~10% of the image size, and a shift up to 5% of the size.
VIEWPOINT_MAX_ANGLE = 30.0
VIEWPOINT_SCALE = (0.75, 1.25)
VIEWPOINT_MAX_TILT = 0.25
VIEWPOINT_MAX_SHIFT = 0.05
# Sweeps beyond the training distribution: pure rotations and pure zooms about the centre.
ROTATION_BINS = (0.0, 15.0, 30.0, 45.0, 60.0, 90.0, 135.0, 180.0)
SCALE_BINS = (0.5, 0.7, 0.85, 1.0, 1.2, 1.4, 2.0)


@dataclass(frozen=True)
class Warp:
    """The parameters of one homography (see the module docstring)."""

    angle: float = 0.0
    scale: float = 1.0
    tilt: tuple[float, float] = (0.0, 0.0)
    shift: tuple[float, float] = (0.0, 0.0)

    def homography(self, height: int, width: int) -> np.ndarray:
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        a = np.deg2rad(self.angle)
        rotation_zoom = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
        rotation_zoom[:2, :2] *= self.scale
        side = float(max(height, width))
        tilt = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [self.tilt[0] / side, self.tilt[1] / side, 1.0]])
        to_centre = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
        back = np.array([[1.0, 0.0, cx + self.shift[0]], [0.0, 1.0, cy + self.shift[1]], [0.0, 0.0, 1.0]])
        h = back @ tilt @ rotation_zoom @ to_centre
        return h / h[2, 2]


def viewpoint_warp(rng: np.random.Generator, height: int, width: int) -> Warp:
    """A random viewpoint change of the protocol (module constants ``VIEWPOINT_*``)."""
    angle = rng.uniform(-VIEWPOINT_MAX_ANGLE, VIEWPOINT_MAX_ANGLE)
    scale = float(np.exp(rng.uniform(np.log(VIEWPOINT_SCALE[0]), np.log(VIEWPOINT_SCALE[1]))))
    tilt = tuple(rng.uniform(-VIEWPOINT_MAX_TILT, VIEWPOINT_MAX_TILT, size=2))
    shift = tuple(rng.uniform(-VIEWPOINT_MAX_SHIFT, VIEWPOINT_MAX_SHIFT, size=2) * np.array([width, height]))
    return Warp(angle, scale, tilt, shift)


def rotation_warp(angle: float, rng: np.random.Generator | None = None) -> Warp:
    """A pure rotation by ``angle`` degrees about the centre; with ``rng``, the sign is drawn at random."""
    sign = 1.0 if rng is None or rng.random() < 0.5 else -1.0
    return Warp(angle=sign * angle)


def scale_warp(scale: float) -> Warp:
    """A pure zoom by ``scale`` about the centre (s > 1: the content grows)."""
    return Warp(scale=scale)
