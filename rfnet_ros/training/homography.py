"""Random homographies and the geometry of points, orientations and scales under them."""
from __future__ import annotations

import cv2
import numpy as np
import torch


def random_homography(rng: np.random.Generator, height: int, width: int, max_angle_deg: float = 30.0,
                      scale_range: tuple[float, float] = (0.7, 1.4), perspective: float = 0.15,
                      max_shift: float = 0.1) -> np.ndarray:
    """A 3x3 homography of an ``height x width`` image about its centre: rotation, scale, perspective, shift.

    ``perspective`` is the largest corner displacement as a fraction of the image size.
    """
    cx, cy = (width - 1) / 2, (height - 1) / 2
    angle = np.deg2rad(rng.uniform(-max_angle_deg, max_angle_deg))
    scale = np.exp(rng.uniform(np.log(scale_range[0]), np.log(scale_range[1])))
    corners = np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    jitter = rng.uniform(-perspective, perspective, size=(4, 2)) * np.float32([width, height])
    centred = corners + jitter - np.float32([cx, cy])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) * scale
    shift = rng.uniform(-max_shift, max_shift, size=2) * np.float32([width, height])
    moved = centred @ rot.T + np.float32([cx, cy]) + shift
    return cv2.getPerspectiveTransform(corners, moved.astype(np.float32)).astype(np.float64)


def warp_points(homography: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Apply (B, 3, 3) homographies to (B, N, 2) points."""
    ones = torch.ones_like(xy[..., :1])
    projected = torch.cat([xy, ones], dim=-1) @ homography.transpose(1, 2)
    return projected[..., :2] / projected[..., 2:].clamp_min(1e-8)


def warp_frames(homography: torch.Tensor, xy: torch.Tensor, direction: torch.Tensor,
                radius: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Transport points with a local frame (unit direction (B, N, 2) and radius (B, N)) through a homography.

    The frame follows the homography's Jacobian at each point: the direction is J d (renormalised) and the
    radius scales by sqrt(|det J|). Returns warped points, directions and radii.
    """
    eps = 0.5
    warped = warp_points(homography, xy)
    jx = (warp_points(homography, xy + xy.new_tensor([eps, 0.0])) - warped) / eps
    jy = (warp_points(homography, xy + xy.new_tensor([0.0, eps])) - warped) / eps
    new_dir = direction[..., :1] * jx + direction[..., 1:] * jy
    det = (jx[..., 0] * jy[..., 1] - jx[..., 1] * jy[..., 0]).abs()
    return warped, torch.nn.functional.normalize(new_dir, dim=-1), radius * det.sqrt()
