"""Match refinement compiled for the CPU: the same alignment as ``rfnet_ros.matching.refinement``, one match at a
time in machine code (Numba), with the window sampling it needs.

The batched PyTorch form runs each Gauss-Newton step as some forty tensor operations over all of a group's
windows, each reading and writing the group's arrays, with numpy's sampling maps and OpenCV's remap between
them, and its groups share the interpreter lock. The kernel takes one match at a time through the whole
alignment (cut the template, choose its samples, the steps, the checks) with no intermediate arrays, and
runs without the interpreter lock, so the groups of ``refine_matches`` really go side by side on the
engines' threads. On the 2-core development machine (AMD EPYC, AVX2), the 573 matches of a 1024-keypoint
frame: 33-42 ms batched on one thread, about 22 ms compiled on one thread; in the pipeline's match stage on
two threads (with mutual nearest neighbours) 35.8-36.3 ms before, 19.4-19.7 ms after. What is left is mostly
the bilinear reads (about 3,300 per match).

Windows are sampled as ``rfnet_ros.model.patches`` cuts them: a square of half-width ``radius`` px around a
centre, turned by its axes (cos, sin), its points given in the window's [-1, 1] square and read bilinearly,
borders replicated (grid_sample's "border"), from the pyramid level whose pixels are closest to (not larger
than) the window's sample spacing.

Compiled as rfnet_ros.compiled says (Numba; cached on disk): on first use, so later processes load it in a
fraction of a second (``prepare_refinement``: a pipeline does that when it is built). Every compiled function
it uses lives in this one file, and what the kernels need from elsewhere (the pyramid's depth, the least
contrast) comes in as arguments. The arithmetic follows the batched form step for step; positions agree to
1e-4 px (float rounding, and OpenCV's remap quantising bilinear weights to 1/32 px in the batched form).
"""
from __future__ import annotations

import math

import numpy as np

from rfnet_ros.compiled import kernel
from rfnet_ros.model.patches import PYRAMID_LEVELS


@kernel
def pyramid_level(radius: float, size: int, levels: int) -> int:
    """Pyramid level (of ``levels``) a window of half-width ``radius`` px sampled ``size`` times a side is read
    from (as rfnet_ros.model.patches._pyramid_levels)."""
    step = 2.0 * radius / size
    if not math.isfinite(step) or step <= 1.0:
        return 0
    return min(int(math.floor(math.log2(step))), levels - 1)


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
    side, read from its level of ``pyramid`` (``pyramid_arrays``)."""
    level = pyramid_level(radius, size, len(pyramid))
    image = pyramid[level]
    gain = 0.5 ** level
    c, s = cos * radius * gain, sin * radius * gain  # the window's axes in the level's px
    x0, y0 = (cx + 0.5) * gain - 0.5, (cy + 0.5) * gain - 0.5
    reach = abs(c) + abs(s)  # how far along each image axis a point of the [-1, 1] square lies from the centre
    height, width = image.shape
    if not (x0 - reach >= 0 and y0 - reach >= 0 and x0 + reach < width - 1 and y0 + reach < height - 1):
        for k in range(points_x.shape[0]):  # near a border (or not finite): ``bilinear`` replicates the border
            out[k] = bilinear(image, x0 + c * points_x[k] - s * points_y[k], y0 + s * points_x[k] + c * points_y[k])
        return
    # The whole window inside the image (the usual case): the four neighbours of every point exist.
    for k in range(points_x.shape[0]):
        x, y = x0 + c * points_x[k] - s * points_y[k], y0 + s * points_x[k] + c * points_y[k]
        ix, iy = int(x), int(y)
        ax, ay = x - ix, y - iy
        top = image[iy, ix] + ax * (image[iy, ix + 1] - image[iy, ix])
        bottom = image[iy + 1, ix] + ax * (image[iy + 1, ix + 1] - image[iy + 1, ix])
        out[k] = top + ay * (bottom - top)


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
    kernels take it: a tuple of ``PYRAMID_LEVELS`` float32 (h, w) arrays (the kernels read their number from
    the tuple)."""
    return tuple(np.ascontiguousarray(level[0, 0].detach().float().numpy()) for level in pyramid[:PYRAMID_LEVELS])


@kernel
def _standardise(values: np.ndarray, min_contrast: float) -> float:
    """``values`` to zero mean and unit standard deviation in place (deviation no lower than
    ``min_contrast``); returns the deviation used."""
    n = values.shape[0]
    mean = 0.0
    for k in range(n):
        mean += values[k]
    mean /= n
    spread = 0.0
    for k in range(n):
        values[k] -= mean
        spread += values[k] * values[k]
    spread = max(math.sqrt(spread / n), min_contrast)
    for k in range(n):
        values[k] /= spread
    return spread


DIGIT_BITS = 10  # bits of the keys each pass of ``_strongest`` sorts candidates by


@kernel
def _strongest(values: np.ndarray, candidates: np.ndarray, counts: np.ndarray, count: int, out: np.ndarray) -> None:
    """``out``: the indices of the ``count`` largest of ``values`` (float64, none negative or NaN), in no
    particular order; of equal values at the boundary, the first ones. ``candidates`` (len(values)) and
    ``counts`` (2 ** DIGIT_BITS) are scratch.

    A radix selection on the values' bit patterns (for non-negative floats their order as integers is the
    values' order): each pass counts the remaining candidates per digit of DIGIT_BITS bits, starting below the
    highest bit in which the values differ, takes every candidate whose digit lies above the one where the
    count is reached, and keeps that digit's candidates for the next, lower digit. On a window's 1024 values
    usually one or two passes: about half the time of a quickselect, which compares through an index array
    with branches the processor mispredicts."""
    keys = values.view(np.int64)
    n = values.shape[0]
    low, high = keys[0], keys[0]
    for k in range(n):
        candidates[k] = k
        low = min(low, keys[k])
        high = max(high, keys[k])
    top = 0  # the highest bit in which the keys differ, plus one
    while top < 63 and (high ^ low) >> top > 0:
        top += 1
    mask = (1 << DIGIT_BITS) - 1
    remaining, wanted, taken, shift = n, count, 0, max(top - DIGIT_BITS, 0)
    while wanted > 0:
        if remaining <= wanted or shift < 0:  # all of them, or equal keys: the first ones
            for i in range(min(remaining, wanted)):
                out[taken + i] = candidates[i]
            return
        counts[:] = 0
        for i in range(remaining):
            counts[(keys[candidates[i]] >> shift) & mask] += 1
        above, digit = 0, mask
        while above + counts[digit] < wanted:
            above += counts[digit]
            digit -= 1
        kept = 0
        for i in range(remaining):
            here = (keys[candidates[i]] >> shift) & mask
            if here > digit:
                out[taken] = candidates[i]
                taken += 1
            elif here == digit:
                candidates[kept] = candidates[i]
                kept += 1
        wanted -= above
        remaining = kept
        shift = -1 if shift == 0 else max(shift - DIGIT_BITS, 0)


@kernel
def _inverse4(matrix: np.ndarray, out: np.ndarray) -> None:
    """``out``: the inverse of a 4x4 matrix (Gauss-Jordan with partial pivoting)."""
    work = matrix.copy()
    for i in range(4):
        for j in range(4):
            out[i, j] = 1.0 if i == j else 0.0
    for col in range(4):
        pivot = col
        for row in range(col + 1, 4):
            if abs(work[row, col]) > abs(work[pivot, col]):
                pivot = row
        if pivot != col:
            for j in range(4):
                work[col, j], work[pivot, j] = work[pivot, j], work[col, j]
                out[col, j], out[pivot, j] = out[pivot, j], out[col, j]
        scale = work[col, col]
        for j in range(4):
            work[col, j] /= scale
            out[col, j] /= scale
        for row in range(4):
            if row != col:
                factor = work[row, col]
                for j in range(4):
                    work[row, j] -= factor * work[col, j]
                    out[row, j] -= factor * out[col, j]


@kernel
def refine_kernel(first: tuple, second: tuple, xy0: np.ndarray, radius0: np.ndarray, direction0: np.ndarray,
                  xy1: np.ndarray, radius1: np.ndarray, direction1: np.ndarray, weights: np.ndarray,
                  window: float, min_window: float, max_window: float, size: int, iterations: int,
                  max_shift: float, max_scale_change: float, min_correlation: float, converged: float,
                  samples: int, min_contrast: float, out_xy: np.ndarray, out_moved: np.ndarray) -> None:
    """Refine M matches (row m of the first image's keypoints with row m of the second's): ``out_xy`` (M, 2)
    the second keypoints' refined places, ``out_moved`` (M,) which moved. first, second: the images'
    pyramids (``pyramid_arrays``); xy (M, 2) px, radius (M,) patch half-widths px, direction (M, 2) unit
    (cos, sin); weights (size * size,) the windows' Gaussian weights, row-major; min_contrast: the least
    standard deviation a window is standardised by (rfnet_ros.matching.refinement.MIN_CONTRAST); the other
    arguments: ``RefinementSettings``'s fields."""
    n = size * size
    every = not (0 < samples < n)
    count = n if every else samples
    all_x, all_y = window_grid(size)  # the whole window's points
    template = np.empty(n)
    strength = np.empty(n)
    grad_x = np.empty(n)
    grad_y = np.empty(n)
    chosen = np.empty(count, np.int64)
    candidates = np.empty(n, np.int64)
    counts = np.empty(1 << DIGIT_BITS, np.int64)
    points_x = np.empty(count)
    points_y = np.empty(count)
    compared = np.empty(count)
    weighted = np.empty((4, count))
    hessian = np.empty((4, 4))
    inverse = np.empty((4, 4))
    delta = np.empty(4)
    values = np.empty(count)
    second_window = np.empty(n)
    centre_offset = (size - 1) / 2.0
    for m in range(xy0.shape[0]):
        half0 = max(radius0[m] * window, min_window)
        if max_window > 0:
            half0 = min(half0, max(max_window, min_window))
        half1 = half0 * radius1[m] / radius0[m]
        # The template: the first image's window, standardised, its gradients and its compared samples.
        sample_window(first, xy0[m, 0], xy0[m, 1], half0, direction0[m, 0], direction0[m, 1], size, all_x, all_y,
                template)
        _standardise(template, min_contrast)
        for i in range(size):
            for j in range(size):
                k = i * size + j
                grad_x[k] = (template[k + 1] - template[k - 1]) / 2.0 if 0 < j < size - 1 else 0.0
                grad_y[k] = (template[k + size] - template[k - size]) / 2.0 if 0 < i < size - 1 else 0.0
                strength[k] = weights[k] * (grad_x[k] * grad_x[k] + grad_y[k] * grad_y[k])
        if every:
            for k in range(n):
                chosen[k] = k
        else:
            _strongest(strength, candidates, counts, count, chosen)
        for q in range(count):
            compared[q] = template[chosen[q]]
        spread = 1.0 if every else _standardise(compared, min_contrast)
        # The steepest-descent images, weighted, and the Hessian (symmetric: its upper triangle summed, in
        # scalars the compiler keeps in registers).
        h00 = h01 = h02 = h03 = h11 = h12 = h13 = h22 = h23 = h33 = 0.0
        for q in range(count):
            k = chosen[q]
            x, y = k % size - centre_offset, k // size - centre_offset
            points_x[q], points_y[q] = x * (2.0 / size), y * (2.0 / size)
            d0, d1 = grad_x[k] / spread, grad_y[k] / spread
            d2, d3 = d0 * x + d1 * y, d1 * x - d0 * y
            w = weights[k]
            w0, w1, w2, w3 = w * d0, w * d1, w * d2, w * d3
            weighted[0, q], weighted[1, q], weighted[2, q], weighted[3, q] = w0, w1, w2, w3
            h00 += w0 * d0
            h01 += w0 * d1
            h02 += w0 * d2
            h03 += w0 * d3
            h11 += w1 * d1
            h12 += w1 * d2
            h13 += w1 * d3
            h22 += w2 * d2
            h23 += w2 * d3
            h33 += w3 * d3
        damping = 1e-6 * (h00 + h11 + h22 + h33) + 1e-12
        hessian[0, 0], hessian[1, 1], hessian[2, 2], hessian[3, 3] = (h00 + damping, h11 + damping, h22 + damping,
                                                                      h33 + damping)
        hessian[0, 1] = hessian[1, 0] = h01
        hessian[0, 2] = hessian[2, 0] = h02
        hessian[0, 3] = hessian[3, 0] = h03
        hessian[1, 2] = hessian[2, 1] = h12
        hessian[1, 3] = hessian[3, 1] = h13
        hessian[2, 3] = hessian[3, 2] = h23
        _inverse4(hessian, inverse)
        # Inverse-compositional steps on the second window: centre, half-width, angle.
        cx, cy, half = xy1[m, 0], xy1[m, 1], half1
        angle = math.atan2(direction1[m, 1], direction1[m, 0])
        for _ in range(iterations):
            cos, sin = math.cos(angle), math.sin(angle)
            sample_window(second, cx, cy, half, cos, sin, size, points_x, points_y, values)
            _standardise(values, min_contrast)
            g0 = g1 = g2 = g3 = 0.0
            for q in range(count):
                residual = values[q] - compared[q]
                g0 += weighted[0, q] * residual
                g1 += weighted[1, q] * residual
                g2 += weighted[2, q] * residual
                g3 += weighted[3, q] * residual
            for a in range(4):
                delta[a] = inverse[a, 0] * g0 + inverse[a, 1] * g1 + inverse[a, 2] * g2 + inverse[a, 3] * g3
            shift_x, shift_y = delta[0] * (2.0 * half / size), delta[1] * (2.0 * half / size)
            cx -= cos * shift_x - sin * shift_y
            cy -= sin * shift_x + cos * shift_y
            half = half * (1.0 - delta[2])
            angle = angle - delta[3]
            if converged > 0:
                change = max(abs(delta[0]), abs(delta[1]), max(abs(delta[2]), abs(delta[3])) * size / 2.0)
                if change < converged:
                    break
        moved = math.isfinite(cx) and math.isfinite(cy) and half > 0
        moved = moved and math.hypot(cx - xy1[m, 0], cy - xy1[m, 1]) <= max_shift * half1
        moved = moved and abs(math.log(max(half, 1e-6) / half1)) <= max_scale_change
        if moved and min_correlation > -1:
            sample_window(second, cx, cy, half, math.cos(angle), math.sin(angle), size, all_x, all_y, second_window)
            _standardise(second_window, min_contrast)
            cross, own, other = 0.0, 0.0, 0.0
            for k in range(n):
                cross += template[k] * second_window[k] * weights[k]
                own += template[k] * template[k] * weights[k]
                other += second_window[k] * second_window[k] * weights[k]
            moved = cross / max(math.sqrt(own * other), 1e-12) >= min_correlation
        out_moved[m] = moved
        if moved:
            out_xy[m, 0], out_xy[m, 1] = cx, cy
        else:
            out_xy[m, 0], out_xy[m, 1] = xy1[m, 0], xy1[m, 1]
