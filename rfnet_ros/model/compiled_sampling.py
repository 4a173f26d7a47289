"""Image sampling for CPU kernels compiled with Numba (rfnet_ros.matching.compiled_refinement): the same
samples as ``rfnet_ros.model.patches`` cuts, one point at a time in machine code, and the compiler's settings.

A window (a patch) is a square of half-width ``radius`` px around a centre, turned by its axes (cos, sin);
its points are given in the window's [-1, 1] square and read bilinearly, borders replicated
(grid_sample's "border"), from the image pyramid level whose pixels are closest to (not larger than) the
window's sample spacing, as ``extract_patches`` and ``sample_patch_points`` read them. Values differ from
those only by float rounding, and by OpenCV's remap (which they use on a CPU) quantising its bilinear weights
to 1/32 px.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from rfnet_ros.model.patches import PYRAMID_LEVELS

# Floating-point liberties the compiler may take: reassociating sums (so that they vectorise), fused
# multiply-adds, reciprocals; not the assumption that no value is NaN or infinite (the checks test for them).
FAST = {"reassoc", "contract", "arcp", "nsz"}


def kernel(function):
    """Compile ``function`` for the CPU: without the interpreter lock (callers run kernels side by side on
    threads), NumPy's error model (no Python exceptions from divisions) and the ``FAST`` liberties; cached on
    disk beside this package or in the user's cache folder (``NUMBA_CACHE_DIR``), so later processes load it
    in a fraction of a second. Where neither is writable (a read-only install run by a user without a home)
    it is compiled in memory in each process instead (a few seconds when the first pipeline is built)."""
    options = {"nogil": True, "error_model": "numpy", "fastmath": FAST}
    try:
        return numba.njit(cache=True, **options)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(**options)(function)


@kernel
def pyramid_level(radius: float, size: int) -> int:
    """Pyramid level a window of half-width ``radius`` px sampled ``size`` times a side is read from (as
    rfnet_ros.model.patches._pyramid_levels)."""
    step = 2.0 * radius / size
    if not math.isfinite(step) or step <= 1.0:
        return 0
    return min(int(math.floor(math.log2(step))), PYRAMID_LEVELS - 1)


@kernel
def bilinear(image: np.ndarray, x: float, y: float) -> float:
    """Bilinear value of ``image`` (h, w) at (x, y) in its px, borders replicated (grid_sample's "border")."""
    if not (math.isfinite(x) and math.isfinite(y)):
        return math.nan
    height, width = image.shape
    fx, fy = math.floor(x), math.floor(y)
    ax, ay = x - fx, y - fy
    x0 = min(max(int(fx), 0), width - 1)
    x1 = min(max(int(fx) + 1, 0), width - 1)
    y0 = min(max(int(fy), 0), height - 1)
    y1 = min(max(int(fy) + 1, 0), height - 1)
    top = (1.0 - ax) * image[y0, x0] + ax * image[y0, x1]
    bottom = (1.0 - ax) * image[y1, x0] + ax * image[y1, x1]
    return (1.0 - ay) * top + ay * bottom


@kernel
def sample_window(pyramid: tuple, cx: float, cy: float, radius: float, cos: float, sin: float, size: int,
                  points_x: np.ndarray, points_y: np.ndarray, out: np.ndarray) -> None:
    """``out[k]``: the image at window point k ((points_x, points_y) in the window's [-1, 1] square) of the
    window centred at (cx, cy) px with half-width ``radius`` and axes (cos, sin), sampled ``size`` times a
    side, read from its level of ``pyramid`` (``PYRAMID_LEVELS`` float32 (h, w) arrays)."""
    level = pyramid_level(radius, size)
    image = pyramid[level]
    gain = 0.5 ** level
    c, s = cos * radius, sin * radius
    for k in range(points_x.shape[0]):
        tx, ty = points_x[k], points_y[k]
        out[k] = bilinear(image, ((cx + 0.5) + c * tx - s * ty) * gain - 0.5,
                          ((cy + 0.5) + s * tx + c * ty) * gain - 0.5)


@kernel
def window_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The points (x (size * size,), y (size * size,)) of a whole window sampled ``size`` times a side, row
    by row, in its [-1, 1] square: sample (row i, column j) at ((j + 0.5) / size * 2 - 1, (i + 0.5) / size
    * 2 - 1), as ``extract_patches`` places them."""
    x, y = np.empty(size * size), np.empty(size * size)
    for i in range(size):
        for j in range(size):
            x[i * size + j] = (j + 0.5) / size * 2.0 - 1.0
            y[i * size + j] = (i + 0.5) / size * 2.0 - 1.0
    return x, y


def pyramid_arrays(pyramid: list) -> tuple[np.ndarray, ...]:
    """A (1, 1, h, w) CPU tensor pyramid (``image_pyramid``, at least ``PYRAMID_LEVELS`` levels) as the
    kernels take it: a tuple of float32 (h, w) arrays."""
    return tuple(np.ascontiguousarray(level[0, 0].detach().float().numpy()) for level in pyramid[:PYRAMID_LEVELS])
