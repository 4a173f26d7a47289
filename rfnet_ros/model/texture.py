"""Image contrast around keypoints: the standard deviation of the intensities in a square window.

The detector's instance normalisation removes the image's contrast, so on a blank, covered or defocused view
it still returns its full top-k of "keypoints" in sensor noise. This measure does not depend on the weights:
the pipeline drops keypoints whose surroundings are flat (``FeatureConfig.min_contrast``).
"""
from __future__ import annotations

import cv2
import torch
import torch.nn.functional as F


def _box_sum(table: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, x1: torch.Tensor, y1: torch.Tensor):
    """Sums over the inclusive pixel boxes [x0, x1] x [y0, y1] of the image ``table`` was built from."""
    return table[y1 + 1, x1 + 1] - table[y0, x1 + 1] - table[y1 + 1, x0] + table[y0, x0]


def _integral_tables(plane: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integral images (H + 1, W + 1) of a float64 (H, W) plane and of its squares, on the plane's device."""
    if plane.device.type == "cpu":
        sums, squares = cv2.integral2(plane.numpy(), sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
        return torch.from_numpy(sums), torch.from_numpy(squares)
    return summed_tables(plane)


def summed_tables(plane: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The tables of :func:`_integral_tables` as cumulative sums of tensors, on any device."""
    return tuple(F.pad(table.cumsum(0).cumsum(1), (1, 0, 1, 0)) for table in (plane, plane * plane))


def contrast_tables(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What :func:`local_contrast` reads of a (1, 1, H, W) image: the integral images (H + 1, W + 1) of its
    mean-centred intensities in float64 and of their squares. It depends on the image only, so a caller can
    make it while the detector runs."""
    plane = image[0, 0].detach().double()
    return _integral_tables(plane - plane.mean())


def local_contrast(image: torch.Tensor, xy: torch.Tensor, radius: torch.Tensor,
                   tables: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Intensity standard deviation around each keypoint.

    image: (1, 1, H, W) intensities; xy: (N, 2) pixel (x, y) in that image; radius: (N,) half-width in its
    pixels (at least one pixel is used, and the window is clipped to the image) -> (N,) standard deviations.
    Integral images of the mean-centred intensities in float64 keep a flat window's result at zero; on a CPU
    OpenCV builds both tables in one pass (several times faster than cumulative sums of tensors), on a GPU
    cumulative sums build them where the image is. ``tables``: ``contrast_tables(image)`` when the caller
    has them.
    """
    height, width = image.shape[-2:]
    half = radius.double().clamp(min=1.0).ceil().long()
    cx = xy[:, 0].round().long().clamp(0, width - 1)
    cy = xy[:, 1].round().long().clamp(0, height - 1)
    x0, x1 = (cx - half).clamp(min=0), (cx + half).clamp(max=width - 1)
    y0, y1 = (cy - half).clamp(min=0), (cy + half).clamp(max=height - 1)
    count = ((x1 - x0 + 1) * (y1 - y0 + 1)).double()
    sums, squares = contrast_tables(image) if tables is None else tables
    mean = _box_sum(sums, x0, y0, x1, y1) / count
    mean_square = _box_sum(squares, x0, y0, x1, y1) / count
    return (mean_square - mean * mean).clamp(min=0.0).sqrt().to(image.dtype)
