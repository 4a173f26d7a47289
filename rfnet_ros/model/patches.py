"""Batched, differentiable extraction of oriented, scaled 32x32 patches around keypoints."""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from rfnet_ros.model.descriptor import PATCH_SIZE

PYRAMID_LEVELS = 3
# OpenCV's remap takes images and maps with sides below SHRT_MAX (32767) only.
REMAP_MAX_SIDE = 32767


def halved(image: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> (..., ceil(H / 2), ceil(W / 2)): the means of 2 x 2 pixels (an odd last row or column:
    of the pixels there are), the values of ``F.avg_pool2d(image, 2, ceil_mode=True)``.

    Where both sides are even, as the sum of the four strided quarters: the same values in the same order of
    addition, about 4x faster than the pooling on a CPU (0.13 against 0.55 ms for 480x640 here)."""
    if image.shape[-1] % 2 or image.shape[-2] % 2:
        return F.avg_pool2d(image, 2, ceil_mode=True)
    return (image[..., 0::2, 0::2] + image[..., 0::2, 1::2] + image[..., 1::2, 0::2] + image[..., 1::2, 1::2]) / 4


def image_pyramid(image: torch.Tensor, levels: int = PYRAMID_LEVELS) -> list[torch.Tensor]:
    """(1, 1, H, W) image and its 2x, 4x, ... area-downsampled copies (``halved``): ``levels`` maps in all."""
    pyramid = [image]
    for _ in range(levels - 1):
        pyramid.append(halved(pyramid[-1]))
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
    # Patch sample (tx, ty), the centres of a size x size grid over [-1, 1]^2, lies at xy + radius *
    # R(orientation) (tx, ty) image px: one affine map per patch from (tx, ty, 1), so that each level's
    # sampling grid is a sum of a per-column and a per-row term, made by broadcasting (F.affine_grid, or a
    # batched product with the (tx, ty, 1) grid, make the same grid several times more slowly on the CPU).
    t = (torch.arange(size, device=image.device, dtype=image.dtype) + 0.5) / size * 2 - 1
    cos, sin = orientation[:, 0] * radius, orientation[:, 1] * radius
    affine = torch.stack([torch.stack([cos, -sin, xy[:, 0]], dim=-1),
                          torch.stack([sin, cos, xy[:, 1]], dim=-1)], dim=1)  # (N, 2, 3): (tx, ty, 1) -> px
    level = _pyramid_levels(radius, size)
    top = int(level.max())
    if pyramid is None:
        pyramid = image_pyramid(image, top + 1)
    if _remap_applies(image, size * size, xy, radius, orientation):
        return _remap_patches(pyramid, xy, radius, orientation, level, size)

    def sample(lvl: int, maps: torch.Tensor) -> torch.Tensor:
        """Patches of the keypoints whose affine maps are ``maps`` (n, 2, 3), read from pyramid level lvl."""
        # Image px -> grid_sample's [-1, 1] of this level (pixel centres x_l = (x + 0.5) / 2^lvl - 0.5).
        sh, sw = pyramid[lvl].shape[-2:]
        gain = maps.new_tensor([2.0 / (2 ** lvl * sw), 2.0 / (2 ** lvl * sh)])[None, :, None]
        offset = maps.new_tensor([[0, 0, 1.0 / (2 ** lvl * sw) - 1], [0, 0, 1.0 / (2 ** lvl * sh) - 1]])
        maps = maps * gain + offset
        columns = maps[:, None, :, 2] + t[None, :, None] * maps[:, None, :, 0]  # (n, S, 2): c + tx a
        rows = t[None, :, None] * maps[:, None, :, 1]  # (n, S, 2): ty b
        grid = rows[:, :, None] + columns[:, None]  # (n, S, S, 2)
        return F.grid_sample(pyramid[lvl], grid.reshape(1, -1, size, 2), mode="bilinear", padding_mode="border",
                             align_corners=False).reshape(-1, 1, size, size)

    if top == 0:
        return sample(0, affine)
    patches = image.new_empty((n, 1, size, size))
    for lvl in range(top + 1):
        index = (level == lvl).nonzero().squeeze(1)
        if index.numel():
            patches.index_copy_(0, index, sample(lvl, affine[index]))
    return patches


def _pyramid_levels(radius: torch.Tensor, size: int) -> torch.Tensor:
    """(N,) pyramid level each patch is read from: the one whose pixels are closest to (not larger than) the
    patch's samples, ``2 * radius / size`` image px apart (0: full resolution)."""
    step = (2 * radius / size).detach()
    return torch.clamp(torch.floor(torch.log2(step.clamp(min=1.0))), 0, PYRAMID_LEVELS - 1).long()


def sample_patch_points(pyramid: list[torch.Tensor], xy: torch.Tensor, radius: torch.Tensor,
                        orientation: torch.Tensor, points: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear samples (N, K) of an image at K points per patch, where ``extract_patches`` with the same
    keypoints and ``size`` would place its samples: points (N, K, 2) are (tx, ty) in the patch's [-1, 1]
    square (its sample (row i, column j) lies at ((j + 0.5) / size * 2 - 1, (i + 0.5) / size * 2 - 1)), read
    from the same pyramid level. pyramid: ``image_pyramid(image)`` with enough levels (``PYRAMID_LEVELS``)."""
    n, k = points.shape[:2]
    if n == 0 or k == 0:
        return pyramid[0].new_zeros((n, k))
    level = _pyramid_levels(radius, size)
    if _remap_applies(pyramid[0], k, xy, radius, orientation, points):
        return _remap_points(pyramid, xy, radius, orientation, points, level)
    cos, sin = orientation[:, 0] * radius, orientation[:, 1] * radius
    tx, ty = points[..., 0], points[..., 1]
    x = xy[:, 0:1] + cos[:, None] * tx - sin[:, None] * ty  # image px
    y = xy[:, 1:2] + sin[:, None] * tx + cos[:, None] * ty
    samples = pyramid[0].new_empty((n, k))
    for lvl in range(int(level.max()) + 1):
        index = (level == lvl).nonzero().squeeze(1)
        if index.numel():
            # Image px -> grid_sample's [-1, 1] of this level (as in extract_patches).
            height, width = pyramid[lvl].shape[-2:]
            grid = torch.stack([(x[index] + 0.5) * (2 / (2 ** lvl * width)) - 1,
                                (y[index] + 0.5) * (2 / (2 ** lvl * height)) - 1], dim=-1)
            samples[index] = F.grid_sample(pyramid[lvl], grid[None], mode="bilinear", padding_mode="border",
                                           align_corners=False)[0, 0]
    return samples


def _remap_points(pyramid: list[torch.Tensor], xy: torch.Tensor, radius: torch.Tensor, orientation: torch.Tensor,
                  points: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``sample_patch_points`` by OpenCV's ``remap`` (see ``_remap_patches``), with its maps made in numpy:
    these are small arrays, for which numpy's per-operation cost is a fraction of PyTorch's."""
    xy, radius, orientation, points, level = (v.numpy() for v in (xy.float(), radius.float(), orientation.float(),
                                                                  points.float(), level))
    cos, sin = (orientation[:, 0] * radius)[:, None], (orientation[:, 1] * radius)[:, None]
    tx, ty = points[..., 0], points[..., 1]
    gain = (np.float32(0.5) ** level.astype(np.float32))[:, None]  # image px -> each patch's level's px
    x = ((xy[:, 0:1] + 0.5) + cos * tx - sin * ty) * gain - 0.5
    y = ((xy[:, 1:2] + 0.5) + sin * tx + cos * ty) * gain - 0.5
    top = int(level.max())
    samples = np.empty(x.shape, np.float32)
    for lvl in range(top + 1):
        index = slice(None) if top == 0 else np.flatnonzero(level == lvl)
        samples[index] = _remap_rows(pyramid[lvl], x[index], y[index])
    return torch.from_numpy(samples)


def _remap_rows(source: torch.Tensor, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """OpenCV's bilinear ``remap`` of a (1, 1, h, w) float32 image at maps (n, L), border replicated as
    grid_sample's "border", one patch per row: in parts of fewer rows than the 32767 remap takes."""
    image, step = source[0, 0].numpy(), REMAP_MAX_SIDE - 1
    parts = [cv2.remap(image, map_x[start:start + step], map_y[start:start + step], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE) for start in range(0, len(map_x), step)]
    if len(parts) == 1:  # the usual case: no copy
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(map_x.shape, np.float32)


def _remap_applies(image: torch.Tensor, row_length: int, *keypoint_values: torch.Tensor) -> bool:
    """Whether OpenCV's ``remap`` can take these samples: float32 on the CPU, no gradient wanted, and an image
    and a row of the maps (``row_length`` samples: one patch) within the sides OpenCV's remap accepts."""
    wants_gradient = torch.is_grad_enabled() and any(v.requires_grad for v in (image, *keypoint_values))
    return (image.device.type == "cpu" and image.dtype == torch.float32 and not wants_gradient
            and max(*image.shape[-2:], row_length) < REMAP_MAX_SIDE)


def _remap_patches(pyramid: list[torch.Tensor], xy: torch.Tensor, radius: torch.Tensor, orientation: torch.Tensor,
                   level: torch.Tensor, size: int) -> torch.Tensor:
    """``extract_patches`` by OpenCV's ``remap`` (bilinear, border replicated as grid_sample's "border"):
    twice as fast on a CPU, but without gradients. OpenCV quantises the bilinear weights to 1/32 px, so values
    differ from grid_sample's by up to about 3e-5 (intensities 0..1)."""
    t = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    xy, radius, orientation, level = (v.numpy() for v in (xy.float(), radius.float(), orientation.float(), level))
    cos, sin = orientation[:, 0] * radius, orientation[:, 1] * radius
    patches = np.empty((len(xy), size, size), np.float32)
    for lvl in range(int(level.max()) + 1):
        index = np.flatnonzero(level == lvl)
        if len(index) == 0:
            continue
        gain = np.float32(0.5 ** lvl)  # image px -> this level's px (pixel centres: (x + 0.5) * gain - 0.5)
        x0, y0 = ((xy[index, 0] + 0.5) * gain - 0.5)[:, None, None], ((xy[index, 1] + 0.5) * gain - 0.5)[:, None, None]
        c, s = (cos[index] * gain)[:, None, None], (sin[index] * gain)[:, None, None]
        tx, ty = t[None, None, :], t[None, :, None]  # patch column, row
        map_x = ((x0 - s * ty) + c * tx).reshape(len(index), -1)  # (n, size * size): x + c tx - s ty
        map_y = ((y0 + c * ty) + s * tx).reshape(len(index), -1)  # y + s tx + c ty
        patches[index] = _remap_rows(pyramid[lvl], map_x, map_y).reshape(-1, size, size)
    return torch.from_numpy(patches)[:, None]


def orientation_angle(orientation: torch.Tensor) -> torch.Tensor:
    """(..., 2) unit (cos, sin) -> (...) radians in (-pi, pi]."""
    return torch.atan2(orientation[..., 1], orientation[..., 0])


__all__ = ["extract_patches", "image_pyramid", "orientation_angle", "sample_patch_points"]
