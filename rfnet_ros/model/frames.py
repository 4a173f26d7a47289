"""Keypoint frames measured on the image: characteristic scale and dominant gradient orientation.

RF-Net learns a scale and an orientation per keypoint (:meth:`Detector.frames_at`). The alternative here
measures both on the image at the detected keypoints, as SIFT does for its own keypoints. The pipeline
measures them on the input image, not on the detector's downsized copy: at 240x320 most keypoints sit at
the finest scale that copy resolves, so their measured scale could not shrink when the view zooms out.

- scale: the characteristic scale (Lindeberg 1998), the sigma at which the scale-normalised Laplacian of
  Gaussian |sigma^2 LoG| peaks at the keypoint. Searched over a Gaussian pyramid with
  ``LEVELS_PER_OCTAVE`` levels per octave (each octave 2x downsampled, so the blur kernels stay small),
  refined by a parabola in log2 sigma.
- orientation: the dominant gradient direction (Lowe 2004): a 36-bin histogram of gradient directions
  (linear binning), weighted by magnitude and a Gaussian window, in a smoothed upright patch of the
  keypoint's size; the histogram is smoothed circularly and its peak refined by a parabola.

Where a keypoint's frame is ambiguous, the second-strongest peak is kept too (``measure_frames``): the
orientation histogram's second peak, as SIFT does by adding a keypoint per peak above 80% of the maximum, and
the Laplacian's second local maximum over scale. Describing the keypoint under those frames as well lets the
matcher use whichever description agrees with the other image (rfnet_ros.matching).

OpenCV offers neither for given points (``SIFT.compute`` keeps the angle and size it is handed). The scale
space is built with OpenCV's filters on a CPU, and with torch operations giving the same values where the
image is on a GPU; sampling it, the histograms and the peak searches are PyTorch, batched over keypoints with
no Python loop over them.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from rfnet_ros.model.keypoints import parabola_peak_offset, sample_maps
from rfnet_ros.model.patches import extract_patches, image_pyramid

FIRST_SIGMA = 1.6  # px: the finest scale searched
LEVELS_PER_OCTAVE = 4
OCTAVES = 4  # scales searched: FIRST_SIGMA * 2**(i / 4), i = 0..15, i.e. 1.6 to 21.5 px
SIGMAS_PER_RADIUS = 5.0  # patch half-width per unit of characteristic sigma: 8 to 108 px
ORIENTATION_BINS = 36
ORIENTATION_PATCH = 16  # px per side of the upright patch the orientation histogram is taken in
PATCH_BLUR = 1.25  # patch px: smoothing before the gradients of the orientation histogram
WINDOW_SIGMA = 0.5  # Gaussian weight of the histogram, in units of the patch half-width


def _blur_matrix(length: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(length, length) matrix of a 1-D Gaussian blur (kernel radius 3 sigma) with the borders reflected
    (the edge sample not repeated), or replicated where the kernel is wider than the side."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-t**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    source = torch.arange(length)[:, None] + torch.arange(-radius, radius + 1)[None]
    if radius < length:
        source = source.abs()
        source = torch.where(source > length - 1, 2 * (length - 1) - source, source)
    else:
        source = source.clamp(0, length - 1)
    matrix = torch.zeros((length, length), dtype=torch.float64)
    matrix.scatter_add_(1, source, kernel.expand(length, -1).contiguous())
    return matrix.to(device, dtype)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) maps with reflected borders (kernel radius 3 sigma; replicated
    borders where the kernel is wider than the map).

    Two small matrix products (rows, then columns) per map: for the patch-sized maps it serves (16 x 16 per
    keypoint) they are several times faster on a CPU than a padded depthwise convolution, and they give the
    same values.
    """
    height, width = image.shape[-2:]
    vertical = _blur_matrix(height, sigma, image.dtype, image.device)
    horizontal = _blur_matrix(width, sigma, image.dtype, image.device)
    return vertical @ image @ horizontal.T


def opencv_scale_space(image: np.ndarray, first_sigma: float, levels_per_octave: int,
                       octaves: int) -> list[np.ndarray]:
    """sigma^2 LoG stacks (levels, h_o, w_o) of one float32 image per octave (see laplacian_responses).

    OpenCV's separable Gaussian, 3x3 Laplacian (4-neighbour kernel) and area resize are several times faster
    on a CPU than the same filters as torch convolutions; no gradient is needed through them. Each level is
    the previous one blurred by the Gaussian that brings it to its sigma (Gaussians compose), so the kernels
    stay small.
    """
    sigmas, steps = _level_sigmas(first_sigma, levels_per_octave)
    # sigma^2 of each level in octave px: the Laplacian in octave px already carries the 1/factor^2 of the
    # derivatives, which this normalisation undoes, so responses compare across octaves.
    level = cv2.GaussianBlur(image, (0, 0), first_sigma, borderType=cv2.BORDER_REFLECT_101)
    stacks = []
    for octave in range(octaves):
        h, w = level.shape
        stack = np.empty((levels_per_octave, h, w), np.float32)
        for i in range(levels_per_octave):
            stack[i] = cv2.Laplacian(level, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REPLICATE)
            stack[i] *= np.float32(sigmas[i] ** 2)
            if i + 1 < levels_per_octave or octave + 1 < octaves:
                level = cv2.GaussianBlur(level, (0, 0), steps[i], borderType=cv2.BORDER_REFLECT_101)
        stacks.append(stack)
        if octave + 1 < octaves:
            # The 2 * first_sigma level, 2x area-downsampled (2x2 means; an odd last row or column is
            # averaged with itself), is the next octave's first_sigma base.
            level = cv2.copyMakeBorder(level, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
            level = cv2.resize(level, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
    return stacks


def _level_sigmas(first_sigma: float, levels_per_octave: int) -> tuple[list[float], list[float]]:
    """The sigmas of one octave's levels (and the next octave's first) and the blurs between them."""
    sigmas = [first_sigma * 2 ** (i / levels_per_octave) for i in range(levels_per_octave + 1)]
    return sigmas, [(sigmas[i + 1] ** 2 - sigmas[i] ** 2) ** 0.5 for i in range(levels_per_octave)]


def _gaussian_as_opencv(level: torch.Tensor, sigma: float) -> torch.Tensor:
    """cv2.GaussianBlur(level, (0, 0), sigma, borderType=BORDER_REFLECT_101) of a (1, 1, h, w) float32 map as
    torch convolutions: OpenCV's kernel for float images (size round(8 sigma + 1) made odd, normalised
    samples of the Gaussian), borders reflected without the edge sample repeated."""
    size = int(math.floor(sigma * 8 + 1 + 0.5)) | 1
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-t**2 / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(level.device, level.dtype)
    half = size // 2
    level = F.conv2d(level.index_select(3, _reflected(level.shape[3], half, level.device)),
                     kernel.view(1, 1, 1, size))
    return F.conv2d(level.index_select(2, _reflected(level.shape[2], half, level.device)),
                    kernel.view(1, 1, size, 1))


def _reflected(length: int, half: int, device: torch.device) -> torch.Tensor:
    """Indices of a side of ``length`` samples padded by ``half`` on both ends, reflected without the edge
    sample repeated (OpenCV's BORDER_REFLECT_101), also where the padding is wider than the side."""
    index = torch.arange(-half, length + half, device=device).abs()
    if length == 1:
        return torch.zeros_like(index)
    period = 2 * (length - 1)
    index = index % period
    return torch.where(index > length - 1, period - index, index)


def torch_scale_space(image: torch.Tensor, first_sigma: float, levels_per_octave: int,
                      octaves: int) -> list[torch.Tensor]:
    """:func:`opencv_scale_space` of one (H, W) image as torch operations on the image's own device.

    On a GPU the OpenCV filters would need the image copied to the host and every stack copied back; these
    give the same values (to float rounding) where the image is.
    """
    sigmas, steps = _level_sigmas(first_sigma, levels_per_octave)
    laplacian = image.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    level = _gaussian_as_opencv(image.float()[None, None], first_sigma)
    stacks = []
    for octave in range(octaves):
        stack = []
        for i in range(levels_per_octave):
            stack.append(F.conv2d(F.pad(level, (1, 1, 1, 1), mode="replicate"), laplacian) * sigmas[i] ** 2)
            if i + 1 < levels_per_octave or octave + 1 < octaves:
                level = _gaussian_as_opencv(level, steps[i])
        stacks.append(torch.cat(stack, dim=1)[0])
        if octave + 1 < octaves:
            h, w = level.shape[-2:]
            level = F.avg_pool2d(F.pad(level, (0, w % 2, 0, h % 2), mode="replicate"), 2)
    return stacks


def scale_space(image: torch.Tensor, first_sigma: float = FIRST_SIGMA, levels_per_octave: int = LEVELS_PER_OCTAVE,
                octaves: int = OCTAVES) -> list[list[torch.Tensor]]:
    """The sigma^2 LoG stacks of each image of a (B, 1, H, W) batch: per image, one (levels, h_o, w_o) stack per
    octave (:func:`opencv_scale_space` on a CPU, :func:`torch_scale_space` where the image is on another device).

    It depends on the image only, so a caller can make it while the detector runs and hand it to
    :func:`measure_frames`.
    """
    stacks = []
    for b in range(image.shape[0]):
        if image.device.type == "cpu":
            stacks.append([torch.from_numpy(stack) for stack in opencv_scale_space(
                image[b, 0].detach().float().numpy(), first_sigma, levels_per_octave, octaves)])
        else:  # the image stays on its device (a GPU): no copy to the host and back
            stacks.append(torch_scale_space(image[b, 0].detach(), first_sigma, levels_per_octave, octaves))
    return stacks


def laplacian_responses(image: torch.Tensor, xy: torch.Tensor, first_sigma: float = FIRST_SIGMA,
                        levels_per_octave: int = LEVELS_PER_OCTAVE, octaves: int = OCTAVES,
                        stacks: list[list[torch.Tensor]] | None = None) -> torch.Tensor:
    """|sigma^2 LoG| of (B, 1, H, W) images at xy (B, K, 2) px for sigma = first_sigma * 2**(i / levels)
    -> (B, K, levels * octaves).

    Each octave starts from a base blurred by ``first_sigma`` in its own px: octave 0 blurs the image, and
    every further base is the previous octave's 2 * first_sigma level, 2x area-downsampled. Each level within
    an octave adds the blur that brings the level before it to its sigma. ``stacks``: the images'
    :func:`scale_space` with these settings when the caller has it.
    """
    if stacks is None:
        stacks = scale_space(image, first_sigma, levels_per_octave, octaves)
    out = []
    for b, image_stacks in enumerate(stacks):
        responses = []
        for octave, stack in enumerate(image_stacks):
            maps = stack[None].to(image.dtype)
            # Pixel centres of octave o: x_o = (x + 0.5) / 2**o - 0.5.
            # Bicubic: between the pixels of a coarse octave, bilinear sampling flattens the peaked response
            # (by about 15% one octave up) and biases the search towards finer scales.
            responses.append(sample_maps(maps, (xy[b:b + 1] + 0.5) / 2**octave - 0.5, "bicubic").abs())
        out.append(torch.cat(responses, dim=-1))
    return torch.cat(out)


def _refined_peak(values: torch.Tensor, peak: torch.Tensor, circular: bool = False) -> torch.Tensor:
    """Sub-bin position of peaks ``peak`` (..., 1) of ``values`` (..., L) along the last axis -> (...).

    Circular axes wrap around; on a linear axis a peak at either end has no neighbour on one side and is kept
    unrefined.
    """
    levels = values.shape[-1]
    if circular:
        offset = parabola_peak_offset(*(values.gather(-1, (peak + d) % levels).squeeze(-1) for d in (-1, 0, 1)))
    else:
        inner = peak.clamp(1, levels - 2)
        offset = parabola_peak_offset(*(values.gather(-1, inner + d).squeeze(-1) for d in (-1, 0, 1)))
        offset = torch.where(peak.squeeze(-1) == inner.squeeze(-1), offset, torch.zeros_like(offset))
    return peak.squeeze(-1).to(values.dtype) + offset


def _second_peak(values: torch.Tensor, first: torch.Tensor,
                 circular: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The highest local maximum of ``values`` (..., L) other than ``first`` (..., 1), and its height over
    the first's -> (index (..., 1), ratio (...); ratio 0 where there is no other local maximum)."""
    if circular:
        below, above = values.roll(1, -1), values.roll(-1, -1)
    else:
        below = torch.cat([torch.full_like(values[..., :1], -math.inf), values[..., :-1]], dim=-1)
        above = torch.cat([values[..., 1:], torch.full_like(values[..., :1], -math.inf)], dim=-1)
    local_max = (values > below) & (values >= above)
    local_max.scatter_(-1, first, False)
    candidates = torch.where(local_max, values, torch.zeros_like(values))
    height, second = candidates.max(dim=-1, keepdim=True)
    ratio = height.squeeze(-1) / values.gather(-1, first).squeeze(-1).clamp(min=1e-12)
    return second, ratio


def _peak_sigma(response: torch.Tensor, level: torch.Tensor, first_sigma: float = FIRST_SIGMA,
                levels_per_octave: int = LEVELS_PER_OCTAVE) -> torch.Tensor:
    """Sigma (...) in px of Laplacian peaks at ``level`` (..., 1) of responses (..., levels), refined."""
    return first_sigma * 2 ** (_refined_peak(response, level) / levels_per_octave)


def characteristic_scale(image: torch.Tensor, xy: torch.Tensor, first_sigma: float = FIRST_SIGMA,
                         levels_per_octave: int = LEVELS_PER_OCTAVE, octaves: int = OCTAVES) -> torch.Tensor:
    """Characteristic scale sigma (B, K) in px of (B, 1, H, W) images at xy (B, K, 2) px (module docstring)."""
    response = laplacian_responses(image, xy, first_sigma, levels_per_octave, octaves)
    return _peak_sigma(response, response.argmax(dim=-1, keepdim=True), first_sigma, levels_per_octave)


def orientation_histogram(image: torch.Tensor, xy: torch.Tensor, radius: torch.Tensor,
                          bins: int = ORIENTATION_BINS, blur: float = PATCH_BLUR, window: float = WINDOW_SIGMA,
                          size: int = ORIENTATION_PATCH, pyramid: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Smoothed gradient-direction histograms (N, bins) of one image (1, 1, H, W) at N keypoints.

    xy: (N, 2) px; radius: (N,) half-width in px of the square the histogram covers; pyramid:
    ``image_pyramid(image)`` when the caller has it. Bin i is centred on direction (i + 0.5) / bins * 2 pi - pi.
    """
    upright = torch.zeros_like(xy)
    upright[:, 0] = 1.0
    patches = gaussian_blur(extract_patches(image, xy, radius, upright, size, pyramid), blur)[:, 0]
    weight = _window_weight(size - 2, window)
    if patches.device.type == "cpu" and patches.dtype == torch.float32 and not patches.requires_grad:
        # Compiled on first use; imported here so that a process measuring frames on a GPU does without
        # the compiler's runtime.
        from rfnet_ros.model.compiled_frames import direction_histograms

        histogram = np.empty((patches.shape[0], bins), np.float32)
        direction_histograms(np.ascontiguousarray(patches.numpy()), weight, bins, histogram)
        return torch.from_numpy(histogram)
    return batched_direction_histograms(patches, torch.from_numpy(weight).to(patches.device, patches.dtype), bins)


@functools.lru_cache(maxsize=8)
def _window_weight(size: int, window: float) -> np.ndarray:
    """(size, size) float32 Gaussian weight of the histogram's gradients: standard deviation ``window`` in
    units of the patch half-width, over the samples' centres in [-1, 1]."""
    t = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    weight = np.exp(-(t[None] ** 2 + t[:, None] ** 2) / (2 * window**2)).astype(np.float32)
    weight.flags.writeable = False
    return weight


def batched_direction_histograms(patches: torch.Tensor, weight: torch.Tensor, bins: int) -> torch.Tensor:
    """Smoothed gradient-direction histograms (N, bins) of smoothed patches (N, S, S), as tensor operations
    (any device, differentiable): central differences over the inner (S - 2)^2 samples, magnitudes times
    ``weight`` (S - 2, S - 2), linear binning, circular smoothing. On the CPU the compiled kernel
    (rfnet_ros.model.compiled_frames) gives the same histograms several times faster."""
    gx = patches[:, 1:-1, 2:] - patches[:, 1:-1, :-2]
    gy = patches[:, 2:, 1:-1] - patches[:, :-2, 1:-1]
    magnitude = torch.sqrt(gx**2 + gy**2) * weight
    angle = torch.atan2(gy, gx)
    # Linear binning: each gradient's weight is split between the two bins whose centres enclose its angle.
    # position lies in [-0.5, bins - 0.5], so the two bins wrap by one addition or subtraction (an integer
    # remainder costs as much as the rest of the histogram on a CPU).
    position = (angle + math.pi) / (2 * math.pi) * bins - 0.5
    lower = position.floor()
    upper_share = (position - lower).flatten(1)
    upper = lower + 1
    lower = torch.where(lower < 0, lower + bins, lower).long().flatten(1)
    upper = torch.where(upper >= bins, upper - bins, upper).long().flatten(1)
    magnitude = magnitude.flatten(1)
    histogram = patches.new_zeros((patches.shape[0], bins))
    histogram.scatter_add_(1, lower, magnitude * (1 - upper_share))
    histogram.scatter_add_(1, upper, magnitude * upper_share)
    for _ in range(2):  # circular [1, 1, 1] / 3 smoothing, twice (as in SIFT)
        histogram = (histogram.roll(1, 1) + histogram + histogram.roll(-1, 1)) / 3
    return histogram


def _bin_direction(histogram: torch.Tensor, peak: torch.Tensor) -> torch.Tensor:
    """Unit directions (..., 2) of peaks ``peak`` (..., 1) of histograms (..., bins), refined between bins."""
    bins = histogram.shape[-1]
    theta = (_refined_peak(histogram, peak, circular=True) + 0.5) / bins * 2 * math.pi - math.pi
    return torch.stack([theta.cos(), theta.sin()], dim=-1)


def dominant_orientation(image: torch.Tensor, xy: torch.Tensor, radius: torch.Tensor,
                         bins: int = ORIENTATION_BINS, blur: float = PATCH_BLUR,
                         window: float = WINDOW_SIGMA, size: int = ORIENTATION_PATCH) -> torch.Tensor:
    """Dominant gradient direction of one image (1, 1, H, W) at N keypoints -> (N, 2) unit (cos, sin).

    xy: (N, 2) px; radius: (N,) half-width in px of the square the histogram covers.
    """
    if xy.shape[0] == 0:
        return xy.new_zeros((0, 2))
    histogram = orientation_histogram(image, xy, radius, bins, blur, window, size)
    return _bin_direction(histogram, histogram.argmax(dim=1, keepdim=True))


@dataclass
class ImageFrames:
    """Frames of (B, K) keypoints measured on the image, in the image's px.

    radius: (B, K) patch half-width (``SIGMAS_PER_RADIUS`` characteristic sigmas); direction: (B, K, 2) unit
    (cos, sin) dominant gradient direction in a square of that half-width; contrast: (B, K) |sigma^2 LoG| at
    the characteristic scale, in image intensity units; scale_peaked: (B, K) whether the Laplacian peaks within
    the scales searched (False: still rising at the largest, so that scale is only a bound).
    Second peaks (None unless asked for): second_direction, the orientation histogram's second peak, and
    second_radius, the Laplacian's second peak over scale, with second_radius_direction, the dominant
    direction measured at that radius; second_orientation_ratio / second_scale_ratio: (B, K) the height of
    each second peak over the first's (0 where there is none).
    """

    radius: torch.Tensor
    direction: torch.Tensor
    contrast: torch.Tensor
    scale_peaked: torch.Tensor
    second_direction: torch.Tensor | None = None
    second_orientation_ratio: torch.Tensor | None = None
    second_radius: torch.Tensor | None = None
    second_radius_direction: torch.Tensor | None = None
    second_scale_ratio: torch.Tensor | None = None


def _histograms(image: torch.Tensor, xy: torch.Tensor, radius: torch.Tensor, pyramid: list[torch.Tensor],
                again: torch.Tensor | None = None,
                again_radius: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Orientation histograms (B, K, bins) of keypoints xy (B, K, 2) px, half-widths radius (B, K); pyramid:
    ``image_pyramid(image)`` of the batch. ``again`` (B, K) bool marks keypoints also measured at the
    half-widths ``again_radius`` (B, K): their histograms come second, per image (n_b, bins), from the same
    patch cut and histogram call as the first ones."""
    histograms, again_histograms = [], []
    for i in range(len(image)):
        index = again[i].nonzero().squeeze(1) if again is not None else xy.new_zeros(0, dtype=torch.long)
        points = torch.cat([xy[i], xy[i, index]])
        if points.shape[0] == 0:
            histograms.append(xy.new_zeros((0, ORIENTATION_BINS)))
            again_histograms.append(xy.new_zeros((0, ORIENTATION_BINS)))
            continue
        radii = torch.cat([radius[i], again_radius[i, index]]) if again is not None else radius[i]
        both = orientation_histogram(image[i:i + 1], points, radii, pyramid=_item(pyramid, i))
        histograms.append(both[:xy.shape[1]])
        again_histograms.append(both[xy.shape[1]:])
    return torch.stack(histograms), again_histograms


def _item(pyramid: list[torch.Tensor], index: int) -> list[torch.Tensor]:
    """The pyramid of image ``index`` of a batch's pyramid."""
    return [level[index:index + 1] for level in pyramid]


def measure_frames(image: torch.Tensor, xy: torch.Tensor, second_peaks: bool = False,
                   second_scale_min_ratio: float = 0.0, pyramid: list[torch.Tensor] | None = None,
                   stacks: list[list[torch.Tensor]] | None = None) -> ImageFrames:
    """Frames of keypoints xy (B, K, 2) px measured on (B, 1, H, W) images, with the second peaks if asked.

    The dominant direction at the second scale peak takes a second orientation histogram per keypoint; it is
    measured only where that peak reaches ``second_scale_min_ratio`` of the first (and exists); elsewhere
    ``second_radius_direction`` repeats ``direction``. The pipeline passes its ``second_peak_ratio``, below
    which it does not use that frame. ``pyramid``: ``image_pyramid(image)`` when the caller has it (the patch
    cuts read it); ``stacks``: ``scale_space(image)`` when the caller has it.
    """
    pyramid = image_pyramid(image) if pyramid is None else pyramid
    response = laplacian_responses(image, xy, stacks=stacks)
    peak = response.argmax(dim=-1, keepdim=True)
    radius = _peak_sigma(response, peak) * SIGMAS_PER_RADIUS
    peaked = peak.squeeze(-1) < response.shape[-1] - 1
    if second_peaks:
        second_level, second_scale_ratio = _second_peak(response, peak)
        second_radius = _peak_sigma(response, second_level) * SIGMAS_PER_RADIUS
        wanted = (second_scale_ratio > 0) & (second_scale_ratio >= second_scale_min_ratio)
        histogram, at_second = _histograms(image, xy, radius, pyramid, wanted, second_radius)
    else:
        histogram, _ = _histograms(image, xy, radius, pyramid)
    first_bin = histogram.argmax(dim=-1, keepdim=True)
    frames = ImageFrames(radius, _bin_direction(histogram, first_bin), response.gather(-1, peak).squeeze(-1),
                         peaked)
    if not second_peaks:
        return frames
    second_bin, frames.second_orientation_ratio = _second_peak(histogram, first_bin, circular=True)
    frames.second_direction = _bin_direction(histogram, second_bin)
    frames.second_scale_ratio = second_scale_ratio
    frames.second_radius = second_radius
    frames.second_radius_direction = frames.direction.clone()
    for b in range(len(image)):
        if at_second[b].shape[0]:
            frames.second_radius_direction[b, wanted[b]] = _bin_direction(
                at_second[b], at_second[b].argmax(dim=-1, keepdim=True))
    return frames


__all__ = ["SIGMAS_PER_RADIUS", "ImageFrames", "batched_direction_histograms", "characteristic_scale",
           "dominant_orientation", "gaussian_blur", "laplacian_responses", "measure_frames", "opencv_scale_space",
           "orientation_histogram", "scale_space", "torch_scale_space"]
