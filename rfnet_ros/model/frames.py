"""Keypoint frames measured on the image: characteristic scale and dominant gradient orientation.

RF-Net learns a scale and an orientation per keypoint (:meth:`Detector.frames_at`). The alternative here
measures both on the image at the detected keypoints, as SIFT does for its own keypoints:

- scale: the characteristic scale (Lindeberg 1998), the sigma at which the scale-normalised Laplacian of
  Gaussian |sigma^2 LoG| peaks at the keypoint. Searched over a Gaussian pyramid with
  ``LEVELS_PER_OCTAVE`` levels per octave (each octave 2x downsampled, so the blur kernels stay small),
  refined by a parabola in log2 sigma.
- orientation: the dominant gradient direction (Lowe 2004): a 36-bin histogram of gradient directions
  (linear binning), weighted by magnitude and a Gaussian window, in a smoothed upright patch of the
  keypoint's size; the histogram is smoothed circularly and its peak refined by a parabola.

OpenCV offers neither for given points (``SIFT.compute`` keeps the angle and size it is handed), so they are
written here in PyTorch: batched over keypoints, no Python loop over them, on the image's device.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rfnet_ros.model.keypoints import parabola_peak_offset, sample_maps
from rfnet_ros.model.patches import extract_patches

FIRST_SIGMA = 1.6  # px: the finest scale searched
LEVELS_PER_OCTAVE = 4
OCTAVES = 3  # scales searched: FIRST_SIGMA * 2**(i / 4), i = 0..11, i.e. 1.6 to 10.8 px
SIGMAS_PER_RADIUS = 5.0  # patch half-width per unit of characteristic sigma: 8 to 54 px
ORIENTATION_BINS = 36
ORIENTATION_PATCH = 16  # px per side of the upright patch the orientation histogram is taken in
PATCH_BLUR = 1.25  # patch px: smoothing before the gradients of the orientation histogram
WINDOW_SIGMA = 0.5  # Gaussian weight of the histogram, in units of the patch half-width


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) maps with reflected borders (kernel radius 3 sigma)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, device=image.device, dtype=image.dtype)
    kernel = torch.exp(-t**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = image.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    # Reflect padding needs the pad to be smaller than the map; tiny pyramid levels fall back to replicate.
    mode = "reflect" if radius < min(image.shape[-2:]) else "replicate"
    out = F.conv2d(F.pad(image, (radius, radius, 0, 0), mode=mode), horizontal, groups=channels)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode=mode), vertical, groups=channels)


def laplacian_responses(image: torch.Tensor, xy: torch.Tensor, first_sigma: float = FIRST_SIGMA,
                        levels_per_octave: int = LEVELS_PER_OCTAVE, octaves: int = OCTAVES) -> torch.Tensor:
    """|sigma^2 LoG| of (B, 1, H, W) images at xy (B, K, 2) px for sigma = first_sigma * 2**(i / levels)
    -> (B, K, levels * octaves).

    Each octave starts from a base blurred by ``first_sigma`` in its own px: octave 0 blurs the image, and
    every further base is the previous octave's 2 * first_sigma level, 2x area-downsampled. Levels within an
    octave add the blur that brings the base to their sigma.
    """
    laplacian = image.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    sigmas = [first_sigma * 2 ** (i / levels_per_octave) for i in range(levels_per_octave + 1)]
    # sigma^2 of each level in octave px: the Laplacian in octave px already carries the 1/factor^2 of the
    # derivatives, which this normalisation undoes, so responses compare across octaves.
    normalisation = image.new_tensor(sigmas[:-1]) ** 2
    base = gaussian_blur(image, first_sigma)
    responses = []
    for octave in range(octaves):
        levels = [base] + [gaussian_blur(base, (sigma**2 - first_sigma**2) ** 0.5) for sigma in sigmas[1:]]
        lap = F.conv2d(F.pad(torch.cat(levels[:-1], dim=1), (1, 1, 1, 1), mode="replicate"),
                       laplacian.expand(levels_per_octave, 1, 3, 3), groups=levels_per_octave)
        # Pixel centres of octave o: x_o = (x + 0.5) / 2**o - 0.5.
        # Bicubic: between the pixels of a coarse octave, bilinear sampling flattens the peaked response
        # (by about 15% one octave up) and biases the search towards finer scales.
        responses.append(sample_maps(lap, (xy + 0.5) / 2**octave - 0.5, "bicubic").abs() * normalisation)
        base = F.avg_pool2d(levels[-1], 2, ceil_mode=True)
    return torch.cat(responses, dim=-1)


def characteristic_scale(image: torch.Tensor, xy: torch.Tensor, first_sigma: float = FIRST_SIGMA,
                         levels_per_octave: int = LEVELS_PER_OCTAVE, octaves: int = OCTAVES) -> torch.Tensor:
    """Characteristic scale sigma (B, K) in px of (B, 1, H, W) images at xy (B, K, 2) px (module docstring)."""
    response = laplacian_responses(image, xy, first_sigma, levels_per_octave, octaves)
    levels = response.shape[-1]
    peak = response.argmax(dim=-1, keepdim=True)
    inner = peak.clamp(1, levels - 2)
    offset = parabola_peak_offset(*(response.gather(-1, inner + d).squeeze(-1) for d in (-1, 0, 1)))
    # A peak at the first or last level has no neighbour on one side: keep it unrefined.
    offset = torch.where(peak.squeeze(-1) == inner.squeeze(-1), offset, torch.zeros_like(offset))
    return first_sigma * 2 ** ((peak.squeeze(-1).to(image.dtype) + offset) / levels_per_octave)


def dominant_orientation(image: torch.Tensor, xy: torch.Tensor, radius: torch.Tensor,
                         bins: int = ORIENTATION_BINS, blur: float = PATCH_BLUR,
                         window: float = WINDOW_SIGMA, size: int = ORIENTATION_PATCH) -> torch.Tensor:
    """Dominant gradient direction of one image (1, 1, H, W) at N keypoints -> (N, 2) unit (cos, sin).

    xy: (N, 2) px; radius: (N,) half-width in px of the square the histogram covers.
    """
    n = xy.shape[0]
    if n == 0:
        return xy.new_zeros((0, 2))
    upright = torch.zeros_like(xy)
    upright[:, 0] = 1.0
    patches = gaussian_blur(extract_patches(image, xy, radius, upright, size), blur)[:, 0]
    gx = patches[:, 1:-1, 2:] - patches[:, 1:-1, :-2]
    gy = patches[:, 2:, 1:-1] - patches[:, :-2, 1:-1]
    size = gx.shape[-1]
    t = (torch.arange(size, device=image.device, dtype=image.dtype) + 0.5) / size * 2 - 1
    ty, tx = torch.meshgrid(t, t, indexing="ij")
    weight = torch.exp(-(tx**2 + ty**2) / (2 * window**2))
    magnitude = torch.sqrt(gx**2 + gy**2) * weight
    angle = torch.atan2(gy, gx)
    # Linear binning: each gradient's weight is split between the two bins whose centres enclose its angle.
    position = (angle + math.pi) / (2 * math.pi) * bins - 0.5
    lower = position.floor()
    upper_share = (position - lower).flatten(1)
    lower = lower.long().flatten(1)
    magnitude = magnitude.flatten(1)
    histogram = image.new_zeros((n, bins))
    histogram.scatter_add_(1, lower % bins, magnitude * (1 - upper_share))
    histogram.scatter_add_(1, (lower + 1) % bins, magnitude * upper_share)
    for _ in range(2):  # circular [1, 1, 1] / 3 smoothing, twice (as in SIFT)
        histogram = (histogram.roll(1, 1) + histogram + histogram.roll(-1, 1)) / 3
    peak = histogram.argmax(dim=1, keepdim=True)
    offset = parabola_peak_offset(*(histogram.gather(1, (peak + d) % bins).squeeze(1) for d in (-1, 0, 1)))
    theta = (peak.squeeze(1).to(image.dtype) + 0.5 + offset) / bins * 2 * math.pi - math.pi
    return torch.stack([theta.cos(), theta.sin()], dim=-1)


def image_frames(image: torch.Tensor, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames of (B, K) keypoints xy (B, K, 2) px measured on (B, 1, H, W) images.

    Returns the patch half-width (B, K) in px (``SIGMAS_PER_RADIUS`` characteristic sigmas) and the unit
    dominant gradient direction (B, K, 2) (cos, sin) measured in a square of that half-width.
    """
    radius = characteristic_scale(image, xy) * SIGMAS_PER_RADIUS
    direction = torch.stack([dominant_orientation(image[i:i + 1], xy[i], radius[i]) for i in range(len(image))])
    return radius, direction


__all__ = ["SIGMAS_PER_RADIUS", "characteristic_scale", "dominant_orientation", "gaussian_blur", "image_frames",
           "laplacian_responses"]
