"""How the package compiles its CPU kernels (Numba): the options every kernel shares, and its on-disk cache.

Kernels: the match refinement's alignment (rfnet_ros.matching.compiled_refinement) and the orientation
histograms of the frames measured on the image (rfnet_ros.model.compiled_frames). Numba, a well-kept compiler
of numerical Python, rather than C++: it needs no compiler at install time, and each kernel stays readable
next to the batched PyTorch form it must agree with (the tests compare the two).

Numba checks a cached function against its own source file only, not against the files of the functions it
calls: so a kernel file's compiled functions call only compiled functions of that same file. This module
holds the decorator only, which is not compiled itself.
"""
from __future__ import annotations

import numba

# Floating-point liberties the compiler may take: reassociating sums (so that they vectorise), fused
# multiply-adds, reciprocals; not the assumption that no value is NaN or infinite (the checks test for them).
FAST = {"reassoc", "contract", "arcp", "nsz"}


def kernel(function):
    """Compile ``function`` for the CPU: without the interpreter lock (callers run kernels side by side on
    threads), NumPy's error model (no Python exceptions from divisions) and the ``FAST`` liberties; cached on
    disk beside its package or in the user's cache folder (``NUMBA_CACHE_DIR``), so later processes load it
    in a fraction of a second. Where neither is writable (a read-only install run by a user without a home)
    it is compiled in memory in each process instead (a few seconds when the first pipeline is built)."""
    options = {"nogil": True, "error_model": "numpy", "fastmath": FAST}
    try:
        return numba.njit(cache=True, **options)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(**options)(function)
