"""Sub-pixel match refinement: each matched keypoint moved to where its surroundings align with its match's.

Keypoints come from the detector's model-resolution score map (at 240x320 for a 480x640 frame, so each is
placed within about a model pixel, two input pixels); two views of the same point are therefore often 1-3 px
apart even when the match is right. For each match, this module takes a square window around the first
keypoint, in that keypoint's scale and orientation frame (the template), and the window of the same size in
the second keypoint's frame, and aligns the second window to the template by a similarity warp (shift,
scale, rotation; Lucas-Kanade, inverse compositional, on intensities standardised per window, Gaussian
weights). Because both windows start in their keypoints' frames, rotation and zoom between the views are
already taken out; the warp absorbs what the measured frames got wrong (a few degrees, a tenth of an
octave) and the misplacement. The second keypoint moves to the aligned window's centre. A keypoint keeps its
place when the alignment ran off (shift beyond half the window, scale change beyond ``max_scale_change``)
or found no consistent fit: the aligned windows agree less than ``min_correlation``. That check matters
most on edges, where a window can slide along the edge (the aperture problem) and a right match would
otherwise be moved away from its correspondence.

Each Gauss-Newton step compares only the template's ``samples`` strongest samples (the largest Gaussian-
weighted squared gradients; 256 of the 1024), as sparse direct alignment does: the flat samples of a window
add little to the fit but cost as much to cut and compare. The template is still cut whole (its gradients
choose the samples), and the correlation check reads whole windows.

Defaults chosen on the validation split (sequences' correct-match ratio and pairs' MMA@3): windows as wide
as the keypoint's patch (window 1.0), sampled 32 x 32 so that the samples stay as dense as the patch's,
and min_correlation 0.8. Narrower windows (0.5 with 16 x 16 samples) align fewer matches correctly; wider
windows sampled more sparsely alias. 256 compared samples: every headline within the bootstrap interval of
comparing all 1024 (MMA@1 0.781 against 0.787, sequence correct ratio 0.943 against 0.946), at 40% of the
refinement's time; 128: MMA@3 and the sequences' correct ratio 0.010 lower.

Written here rather than taken from OpenCV: ``cv2.calcOpticalFlowPyrLK`` aligns translation-only windows
in image axes, which fails under the rotations and zooms the keypoints' frames remove, and it works per point
on the CPU, not batched on the pipeline's device.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from rfnet_ros.model.patches import PYRAMID_LEVELS, extract_patches, image_pyramid, sample_patch_points
from rfnet_ros.threads import parallel_map, thread_blocks

MIN_CONTRAST = 1e-3  # intensities 0..1
CHUNK = 512  # most matches aligned together (refine_matches)
MIN_GROUP = 192  # fewest matches worth a thread of their own (refine_matches)


@dataclass(frozen=True)
class RefinementSettings:
    """window: half-width of the aligned windows as a share of the keypoint's patch half-width (its scale),
    at least min_window px in the first image (so that the 1-2 px errors of small keypoints stay within
    reach); size: window side in samples; iterations: Gauss-Newton steps; max_shift: the largest accepted
    shift as a share of the window's half-width; max_scale_change: the largest accepted |log| scale change of
    the window (larger ones mean the alignment ran off); min_correlation: the aligned windows must agree at
    least this well (``correlation``), else the alignment found no consistent fit (an edge it slid along, a
    repeated pattern, an occlusion) and the keypoint keeps its place (-1: no check); max_window: the largest
    half-width in px of the first image's window (0: no limit), so that the keypoints of flat regions, whose
    patches reach a hundred px, align on their own surroundings rather than on whatever dominates a wide
    window (another surface at another depth); converged: a window
    whose step moved it less than this many window samples (and changed its scale and angle by less than
    this share of one sample over the half-width) has converged and takes no more steps (0: every window
    takes all ``iterations``; most windows converge in two or three steps); samples: the Gauss-Newton steps
    compare this many samples of each window, the template's with the strongest weighted gradients (0 or at
    least size * size: every sample), as sparse direct alignment does: the flat samples a window also
    has add little to the fit but cost as much to cut and compare."""

    window: float = 1.0
    min_window: float = 4.0
    size: int = 32
    iterations: int = 5
    max_shift: float = 0.5
    max_scale_change: float = math.log(1.35)
    min_correlation: float = 0.8
    max_window: float = 0.0
    converged: float = 0.01
    samples: int = 256


@dataclass(frozen=True)
class FramedKeypoints:
    """One image's side of M matches: image (1, 1, H, W) intensities; xy (M, 2) px (x, y); radius (M,) patch
    half-widths (keypoint scales) px; direction (M, 2) unit (cos, sin) orientations; pyramid:
    ``image_pyramid(image)`` when already made (else the refinement makes it)."""

    image: torch.Tensor
    xy: torch.Tensor
    radius: torch.Tensor
    direction: torch.Tensor
    pyramid: list[torch.Tensor] | None = None

    def with_pyramid(self) -> FramedKeypoints:
        """These keypoints with their image's pyramid, made here if not yet."""
        return self if self.pyramid is not None else dataclasses.replace(self, pyramid=image_pyramid(self.image))

    def take(self, index: torch.Tensor | slice) -> FramedKeypoints:
        """The keypoints at ``index`` (an index or bool tensor over M, or a slice), on the same image."""
        return FramedKeypoints(self.image, self.xy[index], self.radius[index], self.direction[index], self.pyramid)


def _centred_spread(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows (M, ...) less their means, and their standard deviations (M, 1, ...) no lower than
    MIN_CONTRAST, over all but the first axis."""
    axes = tuple(range(1, windows.dim()))
    centred = windows - windows.mean(dim=axes, keepdim=True)
    return centred, centred.square().mean(dim=axes, keepdim=True).sqrt().clamp_min(MIN_CONTRAST)


def _standardise(windows: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit standard deviation per window (M, S, S) or set of samples (M, K); featureless windows
    (deviation below MIN_CONTRAST) stay near zero, so they give no gradient and do not move."""
    centred, spread = _centred_spread(windows)
    return centred / spread


def _gaussian_weights(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    t = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    weights = torch.exp(-(t[None] ** 2 + t[:, None] ** 2) / (2 * (size / 4) ** 2))
    weights[0, :] = weights[-1, :] = 0  # the central differences are not defined on the rim
    weights[:, 0] = weights[:, -1] = 0
    return weights / weights.sum()


def _gradients(template: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences (M, S, S) along x and y of windows (M, S, S); 0 on the rim, where they are not
    defined."""
    grad_x = torch.zeros_like(template)
    grad_y = torch.zeros_like(template)
    grad_x[:, :, 1:-1] = (template[:, :, 2:] - template[:, :, :-2]) / 2
    grad_y[:, 1:-1, :] = (template[:, 2:, :] - template[:, :-2, :]) / 2
    return grad_x, grad_y


def _steepest_descent(grad_x: torch.Tensor, grad_y: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(M, 4, K) derivatives of a template along the similarity warp's parameters at identity (shift x, shift
    y, scale, rotation) at K samples, from the template's gradients there (M, K) and the samples' window
    coordinates x, y (M, K) or (K,), in samples from the window's centre."""
    return torch.stack([grad_x, grad_y, grad_x * x + grad_y * y, grad_y * x - grad_x * y], dim=1)


def correlation(template: torch.Tensor, window: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(M,) weighted normalised cross-correlation of zero-mean windows (M, S, S) under weights (S, S):
    1 identical up to contrast, about 0 unrelated or featureless, -1 inverted."""
    def inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b * weights).sum(dim=(1, 2))

    return inner(template, window) / (inner(template, template) * inner(window, window)).sqrt().clamp_min(1e-12)


def _rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values[index], or values itself when index takes every row in order (arange)."""
    return values if index.numel() == values.shape[0] else values[index]


def refine_matches(first: FramedKeypoints, second: FramedKeypoints,
                   settings: RefinementSettings = RefinementSettings()) -> tuple[torch.Tensor, torch.Tensor]:
    """Refined positions of M matched keypoints of the second image; match m pairs row m of ``first`` with
    row m of ``second``. Returns the refined ``second.xy`` (M, 2) and a (M,) bool mask of the keypoints that
    moved (the others keep their place).

    On the CPU the compiled kernel (rfnet_ros.matching.compiled_refinement) aligns the matches, one group
    per engine thread side by side; elsewhere (CUDA) ``refine_matches_batched`` does, as tensor operations
    on the device. The two agree to float rounding (the tests compare them): 573 matches of a frame on the
    2-core development machine (AMD EPYC, AVX2) took 35-42 ms batched on one thread and about 22 ms compiled
    on one thread, and the compiled groups run side by side on two (the batched groups share the interpreter
    lock, the kernel does not).
    """
    m = first.xy.shape[0]
    if m == 0:
        return second.xy.clone(), torch.zeros(0, dtype=torch.bool, device=second.xy.device)
    first, second = first.with_pyramid(), second.with_pyramid()  # made once, read by every group
    if first.image.device.type == "cpu" and second.image.device.type == "cpu":
        return _refine_compiled(first, second, settings)
    return refine_matches_batched(first, second, settings)


def refine_matches_batched(first: FramedKeypoints, second: FramedKeypoints,
                           settings: RefinementSettings = RefinementSettings()) -> tuple[torch.Tensor, torch.Tensor]:
    """``refine_matches`` as batched tensor operations, on any device.

    Matches are aligned independently of each other, in groups of at most ``CHUNK``, an equal number per
    engine thread, run side by side (``rfnet_ros.threads.parallel_map``); the results are the same. Each
    group's step costs a fixed overhead (some forty operations and a window cut) besides its per-sample
    work, so the groups are as large as that allows; all of a frame's matches in one group (tens of MB)
    would be read from main memory at every step instead of the caches; and no thread takes fewer than
    ``MIN_GROUP`` matches, since more, smaller groups than that lose to the overhead and to the interpreter
    lock the threads share (573 matches on 2 cores: 8 groups on 8 threads 54-68 ms, one thread 24-35, 2
    threads with groups of 96 37-44, 144 24-36, 287 19-28; 406 matches: one thread 16-19, 2 groups of 203
    on 2 threads 14-15, 4 of 102 20-23; all with every sample compared). With 256 compared samples a group
    is mostly interpreter time, so on 2 cores the two threads gain little (573 matches: 15.9-17.0 ms side by
    side, 16.0-16.8 one after the other).
    """
    m = first.xy.shape[0]
    if m == 0:
        return second.xy.clone(), torch.zeros(0, dtype=torch.bool, device=second.xy.device)
    first, second = first.with_pyramid(), second.with_pyramid()  # made once, read by every group
    parts = parallel_map(lambda group: _refine_group(first.take(group), second.take(group), settings),
                         thread_blocks(m, MIN_GROUP, CHUNK))
    return torch.cat([xy for xy, _ in parts]), torch.cat([moved for _, moved in parts])


def prepare_refinement(device: torch.device) -> None:
    """Have ``refine_matches`` ready on ``device`` (the CPU kernel compiled, or loaded from its cache), so
    that the first frame does not wait for it; a pipeline calls this when it is built."""
    if device.type == "cpu":
        image = torch.zeros((1, 1, 16, 16))
        keypoints = FramedKeypoints(image, torch.full((1, 2), 8.0), torch.full((1,), 4.0), torch.tensor([[1.0, 0.0]]))
        refine_matches(keypoints, keypoints)


def _refine_compiled(first: FramedKeypoints, second: FramedKeypoints,
                     settings: RefinementSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """``refine_matches`` on the CPU by the compiled kernel (rfnet_ros.matching.compiled_refinement), one
    group of matches per engine thread, side by side (the kernel runs without the interpreter lock). Imported
    here, on first use: the compiler's runtime adds about 110 MB to a process (peak RSS 249 -> 366 MB with
    torch, OpenCV and OpenVINO loaded), which a process refining on a GPU does not need."""
    from rfnet_ros.matching.compiled_refinement import pyramid_arrays, refine_kernel

    def arrays(keypoints: FramedKeypoints) -> tuple[np.ndarray, ...]:
        return tuple(np.ascontiguousarray(v.detach().float().numpy())
                     for v in (keypoints.xy, keypoints.radius, keypoints.direction))

    def pyramid(keypoints: FramedKeypoints) -> tuple[np.ndarray, ...]:
        levels = keypoints.pyramid
        return pyramid_arrays(levels if len(levels) >= PYRAMID_LEVELS else image_pyramid(keypoints.image))

    m = first.xy.shape[0]
    (xy0, radius0, direction0), (xy1, radius1, direction1) = arrays(first), arrays(second)
    pyramid0, pyramid1 = pyramid(first), pyramid(second)
    weights = _gaussian_weights(settings.size, torch.float32, torch.device("cpu")).reshape(-1).double().numpy()
    out_xy, out_moved = np.empty((m, 2), np.float32), np.empty(m, np.bool_)

    def run(rows: slice) -> None:
        # Settings as the types the kernel was compiled for (an int where a float is expected would compile
        # another specialisation on the frame that first passes one).
        refine_kernel(pyramid0, pyramid1, xy0[rows], radius0[rows], direction0[rows], xy1[rows], radius1[rows],
                      direction1[rows], weights, float(settings.window), float(settings.min_window),
                      float(settings.max_window), int(settings.size), int(settings.iterations),
                      float(settings.max_shift), float(settings.max_scale_change), float(settings.min_correlation),
                      float(settings.converged), int(settings.samples), MIN_CONTRAST, out_xy[rows],
                      out_moved[rows])

    parallel_map(run, thread_blocks(m, MIN_GROUP))
    return torch.from_numpy(out_xy).to(second.xy.dtype), torch.from_numpy(out_moved)


def window_half_widths(radius: torch.Tensor, settings: RefinementSettings) -> torch.Tensor:
    """Half-widths in px (M,) of the first image's windows for keypoints of patch half-widths ``radius`` (M,):
    ``window`` times the radius, at least ``min_window`` and, with ``max_window``, at most that (the compiled
    kernel computes the same per match)."""
    half = (radius * settings.window).clamp(min=settings.min_window)
    if settings.max_window > 0:
        half = half.clamp(max=max(settings.max_window, settings.min_window))
    return half


def _refine_group(first: FramedKeypoints, second: FramedKeypoints,
                  settings: RefinementSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """``refine_matches`` of one group of matches, both sides with their pyramids."""
    pyramid = second.pyramid
    xy1, radius1 = second.xy, second.radius
    half0 = window_half_widths(first.radius, settings)
    half1 = half0 * radius1 / first.radius  # the same window in the second keypoint's frame
    # The second window: centre, half-width and angle, updated by the inverse of each step's warp.
    pose = (xy1.clone(), half1.clone(), torch.atan2(second.direction[:, 1], second.direction[:, 0]))
    template = _Template(first, half0, settings.size, settings.samples)
    _align(template, second.image, pyramid, pose, settings.iterations, settings.converged)
    centre, half, angle = pose
    moved_by = (centre - xy1).norm(dim=1)
    moved = torch.isfinite(centre).all(dim=1) & (half > 0) & (moved_by <= settings.max_shift * half1)
    moved &= torch.log(half.clamp_min(1e-6) / half1).abs() <= settings.max_scale_change
    if settings.min_correlation > -1:
        window = _second_window(second.image, pyramid, centre, half, angle, template.size)
        moved &= correlation(template.values, window, template.weights) >= settings.min_correlation
    return torch.where(moved[:, None], centre, xy1), moved


class _Template:
    """The first image's windows of one group, standardised (``values``, (M, S, S), and ``weights``: what the
    final correlation check compares), with what each Gauss-Newton step needs of them: the K samples the steps
    compare (``points`` (M, K, 2), in the window's [-1, 1] square; all S * S unless ``samples`` is smaller),
    their values standardised over those K, their weighted steepest-descent images (M, 4, K) and the inverse
    Hessians (M, 4, 4)."""

    def __init__(self, first: FramedKeypoints, half: torch.Tensor, size: int, samples: int):
        self.size = size
        m = first.xy.shape[0]
        self.values = _standardise(extract_patches(first.image, first.xy, half, first.direction, size,
                                                   first.pyramid)[:, 0])
        self.weights = _gaussian_weights(size, self.values.dtype, self.values.device)
        grad_x, grad_y = (g.reshape(m, -1) for g in _gradients(self.values))
        values, weights = self.values.reshape(m, -1), self.weights.reshape(1, -1)
        t = torch.arange(size, dtype=values.dtype, device=values.device)
        ty, tx = torch.meshgrid(t, t, indexing="ij")
        samples_xy = torch.stack([tx, ty], dim=-1).reshape(-1, 2) - (size - 1) / 2  # from the centre, in samples
        if 0 < samples < size * size:
            # numpy's introselect: a quarter of the time of torch's topk for these sizes on a CPU.
            strength = (weights * (grad_x.square() + grad_y.square())).cpu().numpy()
            chosen = torch.from_numpy(np.argpartition(strength, -samples, axis=1)[:, -samples:]).to(values.device)
            samples_xy = samples_xy[chosen]  # (M, K, 2)
            weights = weights.expand(m, -1).gather(1, chosen)
            grad_x, grad_y, values = grad_x.gather(1, chosen), grad_y.gather(1, chosen), values.gather(1, chosen)
            # The steps standardise the window's K samples; the template's are standardised the same way.
            centred, spread = _centred_spread(values)
            values, grad_x, grad_y = centred / spread, grad_x / spread, grad_y / spread
        else:
            samples_xy = samples_xy.expand(m, -1, -1)
        descent = _steepest_descent(grad_x, grad_y, samples_xy[..., 0], samples_xy[..., 1])
        # The samples in extract_patches's [-1, 1] window square.
        self.points = samples_xy * (2 / size)
        self.compared = values
        self.weighted_descent = descent * weights[:, None]
        hessian = self.weighted_descent @ descent.transpose(1, 2)
        trace = hessian.diagonal(dim1=1, dim2=2).sum(dim=1)[:, None, None]
        damping = (1e-6 * trace + 1e-12) * torch.eye(4, dtype=hessian.dtype, device=hessian.device)
        self.inverse = torch.linalg.inv(hessian + damping)


def _second_window(image: torch.Tensor, pyramid: list[torch.Tensor], centre: torch.Tensor, half: torch.Tensor,
                   angle: torch.Tensor, size: int) -> torch.Tensor:
    """The standardised second windows (M, S, S) at that pose."""
    axes = torch.stack([angle.cos(), angle.sin()], dim=-1)
    return _standardise(extract_patches(image, centre, half, axes, size, pyramid)[:, 0])


def _align(template: _Template, image: torch.Tensor, pyramid: list[torch.Tensor],
           pose: tuple[torch.Tensor, torch.Tensor, torch.Tensor], iterations: int, converged: float) -> None:
    """Up to ``iterations`` inverse-compositional steps aligning the second windows to ``template``, updating
    ``pose`` (centres (M, 2), half-widths (M,), angles (M,)) in place; window px are 2 * half / size image px,
    along the window's rotated axes."""
    centre, half, angle = pose
    size = template.size
    # Each step runs on the windows that have not converged yet (``active``, indices into the M matches).
    active = torch.arange(centre.shape[0], device=centre.device)
    for _ in range(iterations):
        if active.numel() == 0:
            break
        now = (_rows(centre, active), _rows(half, active), _rows(angle, active))
        axes = torch.stack([now[2].cos(), now[2].sin()], dim=-1)
        window = _standardise(sample_patch_points(pyramid, now[0], now[1], axes, _rows(template.points, active),
                                                  size))
        residual = (window - _rows(template.compared, active))[:, None]
        # (M, 4, K) times (M, 1, K) summed over the samples: cheaper than a batched product of these shapes.
        gradient = (_rows(template.weighted_descent, active) * residual).sum(dim=-1, keepdim=True)
        delta = (_rows(template.inverse, active) @ gradient)[..., 0]
        shift = delta[:, :2] * (2 * now[1] / size)[:, None]
        centre[active] = now[0] - torch.stack([axes[:, 0] * shift[:, 0] - axes[:, 1] * shift[:, 1],
                                               axes[:, 1] * shift[:, 0] + axes[:, 0] * shift[:, 1]], dim=-1)
        half[active] = now[1] * (1 - delta[:, 2])
        angle[active] = now[2] - delta[:, 3]
        if converged > 0:
            # Scale and angle changes move the window's rim by about size / 2 times their value, in samples.
            change = torch.maximum(delta[:, :2].abs().amax(dim=1), delta[:, 2:].abs().amax(dim=1) * size / 2)
            active = active[~(change < converged)]  # NaN steps stay active; the checks below drop them
