"""Keypoint selection on dense detector maps: border suppression, NMS (OpenCV's dilation on a CPU,
max-pooling elsewhere), top-k, sub-pixel offsets.

All operations stay on the maps' device; invalid slots of the fixed-size top-k output are masked, not
branched on (fixed shapes suit compiled and TensorRT-style back ends).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def suppress_border(score: torch.Tensor, border: int) -> torch.Tensor:
    """Zero a ``border``-px frame of a (B, 1, H, W) map."""
    if border <= 0:
        return score
    mask = torch.zeros_like(score)
    mask[..., border:-border, border:-border] = 1.0
    return score * mask


def nms(score: torch.Tensor, size: int = 5) -> torch.Tensor:
    """Keep only local maxima of a (B, 1, H, W) map within size x size windows (max-pool equality).

    On a CPU the size x size maximum is OpenCV's dilation (a rectangle, -inf beyond the border: the values of
    max-pooling, about 20x faster than PyTorch's max_pool2d on a single-channel 240x320 map here); elsewhere
    it is a 1 x size then a size x 1 max-pool. Either way the kept values stay differentiable in the map."""
    if score.device.type == "cpu" and score.dtype in (torch.float32, torch.float64):
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
        maps = score.detach().numpy()
        local_max = np.stack([cv2.dilate(np.ascontiguousarray(m[0]), kernel, borderType=cv2.BORDER_CONSTANT,
                                         borderValue=-np.inf)[None] for m in maps])
        return score * torch.from_numpy(maps == local_max)
    local_max = F.max_pool2d(score, (1, size), stride=1, padding=(0, size // 2))
    local_max = F.max_pool2d(local_max, (size, 1), stride=1, padding=(size // 2, 0))
    return score * (score == local_max)


def parabola_peak_offset(below: torch.Tensor, centre: torch.Tensor, above: torch.Tensor) -> torch.Tensor:
    """Vertex offset in [-0.5, 0.5] of the parabola through samples at -1, 0, +1 (0 where it is not a peak)."""
    curvature = below + above - 2 * centre
    delta = torch.where(curvature < -1e-12, (below - above) / (2 * curvature).clamp(max=-1e-12),
                        torch.zeros_like(centre))
    return delta.clamp(-0.5, 0.5)


def subpixel_offsets(score: torch.Tensor, flat_index: torch.Tensor) -> torch.Tensor:
    """Quadratic-fit offsets in [-0.5, 0.5] px of peaks ``flat_index`` (B, K) in a (B, 1, H, W) map -> (B, K, 2)."""
    b, _, h, w = score.shape
    padded = F.pad(score, (1, 1, 1, 1), mode="replicate").flatten(1)
    y, x = flat_index // w + 1, flat_index % w + 1
    stride = w + 2

    def at(dy: int, dx: int) -> torch.Tensor:
        return padded.gather(1, (y + dy) * stride + (x + dx))

    centre = at(0, 0)
    offsets = [parabola_peak_offset(lo, centre, hi) for lo, hi in ((at(0, -1), at(0, 1)), (at(-1, 0), at(1, 0)))]
    return torch.stack(offsets, dim=-1)


def refine_peaks(score: torch.Tensor, xy: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Sub-pixel peaks (B, K, 2) px of a (B, 1, H, W) map near xy (B, K, 2): the largest value in the
    (2r+1)^2 window around the pixel nearest each point, refined by the parabola fit of ``subpixel_offsets``
    (as keypoints are). Differentiable in the map's values around the peak."""
    b, _, h, w = score.shape
    centre = xy.detach().round().long()
    cx = centre[..., 0].clamp(radius, w - 1 - radius)
    cy = centre[..., 1].clamp(radius, h - 1 - radius)
    t = torch.arange(-radius, radius + 1, device=score.device)
    dy, dx = torch.meshgrid(t, t, indexing="ij")
    index = (cy[..., None] + dy.flatten()) * w + (cx[..., None] + dx.flatten())  # (B, K, window)
    values = score.detach().flatten(1).gather(1, index.flatten(1)).view(*index.shape)
    best = index.gather(-1, values.argmax(-1, keepdim=True)).squeeze(-1)  # flat index of each window's maximum
    peak = torch.stack([best % w, best // w], dim=-1).to(score.dtype)
    return peak + subpixel_offsets(score, best)


def select_keypoints(score: torch.Tensor, top_k: int, nms_size: int = 5, border: int = 8,
                     threshold: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k NMS peaks of a (B, 1, H, W) score map.

    Returns xy (B, K, 2) sub-pixel model-resolution pixels (x, y), values (B, K) and valid (B, K) bool;
    K = min(top_k, H*W).
    """
    peaks = nms(suppress_border(score, border), nms_size)
    b, _, h, w = score.shape
    values, flat_index = peaks.flatten(1).topk(min(top_k, h * w), dim=1)
    xy = torch.stack([flat_index % w, flat_index // w], dim=-1).to(score.dtype)
    xy = xy + subpixel_offsets(score.detach(), flat_index)
    return xy, values, values > threshold


def sample_maps(maps: torch.Tensor, xy: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample (B, C, H, W) maps at xy (B, K, 2) pixels -> (B, K, C); ``mode``: bilinear or bicubic."""
    _, _, h, w = maps.shape
    grid = torch.stack([(2 * xy[..., 0] + 1) / w - 1, (2 * xy[..., 1] + 1) / h - 1], dim=-1)
    out = F.grid_sample(maps, grid.unsqueeze(1), mode=mode, align_corners=False, padding_mode="border")
    return out.squeeze(2).transpose(1, 2)
