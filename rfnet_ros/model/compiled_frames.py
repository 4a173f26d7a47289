"""Orientation histograms compiled for the CPU: the gradient-direction histograms of
``rfnet_ros.model.frames.orientation_histogram`` from its smoothed patches, one patch at a time (Numba, as
rfnet_ros.compiled says).

The batched PyTorch form takes some thirty tensor operations over all of a frame's patches (gradients,
magnitudes, directions, the two bins of each gradient, two scatters, the circular smoothing), each writing a
temporary the size of the batch; the kernel goes through each patch once with no temporaries beyond it. On
the 2-core AMD EPYC (Zen 4), 662 patches of a 512-keypoint frame: about 4.7 ms batched, 1.1 compiled (the
patch cut and its smoothing, 1.2 ms, stay PyTorch and OpenCV in both).

Directions come from a polynomial arctangent (an odd degree-15 least-squares fit of atan on [0, 1], within
5e-8 rad of it, below float32's resolution of an angle) instead of libm's atan2: the polynomial vectorises,
the call does not, and the call cost as much as the rest of the histogram. Histograms agree with the batched
form's to float rounding (about 1e-6 of their peak).
"""
from __future__ import annotations

import math

import numpy as np

from rfnet_ros.compiled import kernel

# atan(a) ~= a * (A0 + A1 a^2 + ... + A7 a^14) on [0, 1]
A0, A1, A2, A3 = 0.9999991860722884, -0.33329292135173405, 0.1994053365015527, -0.1388102001515166
A4, A5, A6, A7 = 0.09577693842676624, -0.055105044732405135, 0.021347216341860507, -0.003922383682663968


@kernel
def direction_histograms(patches: np.ndarray, weight: np.ndarray, bins: int, out: np.ndarray) -> None:
    """``out`` (N, bins): the smoothed gradient-direction histograms of smoothed patches (N, S, S) float32.

    Central differences over the patch's inner (S - 2) x (S - 2) samples, each gradient's magnitude times
    ``weight`` (S - 2, S - 2) split linearly between the two bins whose centres enclose its direction (bin i
    centred on (i + 0.5) / bins * 2 pi - pi), then a circular [1, 1, 1] / 3 smoothing, twice."""
    n, size = patches.shape[0], patches.shape[1]
    inner = size - 2
    count = inner * inner
    magnitude = np.empty(count, np.float32)
    position = np.empty(count, np.float32)
    histogram = np.empty(bins, np.float32)
    per_radian = np.float32(bins / (2.0 * math.pi))
    pi = np.float32(math.pi)
    for p in range(n):
        patch = patches[p]
        for i in range(inner):
            for j in range(inner):
                gx = patch[i + 1, j + 2] - patch[i + 1, j]
                gy = patch[i + 2, j + 1] - patch[i, j + 1]
                q = i * inner + j
                magnitude[q] = math.sqrt(gx * gx + gy * gy) * weight[i, j]
                # atan2(gy, gx): the angle of the octant's ratio in [0, 1], then turned into its octant
                ax, ay = abs(gx), abs(gy)
                top, bottom = min(ax, ay), max(ax, ay)
                a = top / bottom if bottom > 0 else np.float32(0.0)
                z = a * a
                angle = a * (A0 + z * (A1 + z * (A2 + z * (A3 + z * (A4 + z * (A5 + z * (A6 + z * A7)))))))
                angle = pi / 2 - angle if ay > ax else angle
                angle = pi - angle if gx < 0 else angle
                angle = -angle if gy < 0 else angle
                position[q] = (angle + pi) * per_radian - np.float32(0.5)  # in [-0.5, bins - 0.5]
        for b in range(bins):
            histogram[b] = 0.0
        for q in range(count):
            below = math.floor(position[q])
            upper_share = position[q] - below
            lower = int(below)
            upper = lower + 1
            if lower < 0:
                lower += bins
            if upper >= bins:
                upper -= bins
            histogram[lower] += magnitude[q] * (1 - upper_share)
            histogram[upper] += magnitude[q] * upper_share
        for _ in range(2):  # circular [1, 1, 1] / 3 smoothing, twice (as in SIFT)
            first, previous = histogram[0], histogram[bins - 1]
            for b in range(bins):
                here = histogram[b]
                following = histogram[b + 1] if b + 1 < bins else first
                histogram[b] = (previous + here + following) / np.float32(3.0)
                previous = here
        for b in range(bins):
            out[p, b] = histogram[b]
