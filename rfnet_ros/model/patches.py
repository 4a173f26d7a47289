"""Batched, differentiable extraction of oriented, scaled 32x32 patches around keypoints."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from rfnet_ros.model.descriptor import PATCH_SIZE

# Patch half-width in units of the detector's scale: a keypoint of scale s is described by a
# 2*s x 2*s (model px) square, rotated by its orientation.
SUPPORT = 1.0
PYRAMID_LEVELS = 3


def image_pyramid(image: torch.Tensor, levels: int = PYRAMID_LEVELS) -> list[torch.Tensor]:
    """(1, 1, H, W) image and its 2x, 4x, ... area-downsampled copies: ``levels`` maps in all."""
    pyramid = [image]
    for _ in range(levels - 1):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2, ceil_mode=True))
    return pyramid


def extract_patches(image: torch.Tensor, xy: torch.Tensor, radius: torch.Tensor, orientation: torch.Tensor,
                    size: int = PATCH_SIZE, pyramid: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Cut oriented square patches from one image.

    image: (1, 1, H, W); xy: (N, 2) pixel centres (x, y) in that image; radius: (N,) half-width in image px;
    orientation: (N, 2) unit (cos, sin). Returns (N, 1, size, size). Large patches are read from a 2x or 4x
    downsampled copy so that they are not aliased: each keypoint is sampled once, from the level whose pixels
    are closest to (not larger than) its patch pixels. ``pyramid``: ``image_pyramid(image)``, for callers
    that cut patches from one image several times.
    """
    n = xy.shape[0]
    if n == 0:
        return image.new_zeros((0, 1, size, size))
    t = (torch.arange(size, device=image.device, dtype=image.dtype) + 0.5) / size * 2 - 1
    ty, tx = torch.meshgrid(t, t, indexing="ij")
    cos, sin = orientation[:, 0, None, None], orientation[:, 1, None, None]
    r = radius[:, None, None]
    x = xy[:, 0, None, None] + r * (cos * tx - sin * ty)
    y = xy[:, 1, None, None] + r * (sin * tx + cos * ty)
    # Pixels of the source image per patch pixel decides the pyramid level (0: full resolution).
    step = (2 * radius / size).detach()
    level = torch.clamp(torch.floor(torch.log2(step.clamp(min=1.0))), 0, PYRAMID_LEVELS - 1).long()
    patches = []
    order = []
    if pyramid is None:
        pyramid = image_pyramid(image, int(level.max()) + 1)
    for lvl, src in enumerate(pyramid[:int(level.max()) + 1]):
        index = (level == lvl).nonzero().squeeze(1)
        if index.numel() == 0:
            continue
        factor = 2 ** lvl
        sh, sw = src.shape[-2:]
        # Pixel centres of level lvl: x_l = (x + 0.5) / factor - 0.5.
        gx = 2 * ((x[index] + 0.5) / factor) / sw - 1
        gy = 2 * ((y[index] + 0.5) / factor) / sh - 1
        grid = torch.stack([gx, gy], dim=-1).reshape(1, len(index) * size, size, 2)
        sampled = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
        patches.append(sampled.reshape(len(index), 1, size, size))
        order.append(index)
    # Back into keypoint order (each keypoint was sampled once, from its own level).
    return torch.cat(patches)[torch.argsort(torch.cat(order))]


def orientation_angle(orientation: torch.Tensor) -> torch.Tensor:
    """(..., 2) unit (cos, sin) -> (...) radians in (-pi, pi]."""
    return torch.atan2(orientation[..., 1], orientation[..., 0])


__all__ = ["SUPPORT", "extract_patches", "image_pyramid", "orientation_angle"]
